"""Webhook signing secrets at rest. They must be read back to sign, so they are sealed, not
hashed (service_kit/secret_box.py), under the deployment's INVOICING_SECRETS_KEY."""

from service_kit import secret_box


class SecretBox(secret_box.SecretBox):
    def __init__(self, keys: str) -> None:
        super().__init__(keys, setting="INVOICING_SECRETS_KEY")

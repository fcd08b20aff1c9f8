"""Webhook signing secrets at rest. They must be read back to sign, so they are encrypted, not
hashed: Fernet (AES-128-CBC with HMAC-SHA256) under the deployment's INVOICING_SECRETS_KEY.

The setting may list several comma-separated keys to rotate: the first seals, any opens."""

from cryptography.fernet import Fernet, MultiFernet


class SecretBox:
    def __init__(self, keys: str) -> None:
        if not keys.strip():
            raise ValueError(
                "INVOICING_SECRETS_KEY is required: it encrypts webhook signing secrets. Make one"
                ' with: python -c "from cryptography.fernet import Fernet;'
                ' print(Fernet.generate_key().decode())"'
            )
        self._fernet = MultiFernet([Fernet(key.strip()) for key in keys.split(",")])

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        return self._fernet.decrypt(sealed).decode()

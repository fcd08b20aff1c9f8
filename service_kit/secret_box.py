"""Secrets at rest that must be read back (webhook signing secrets, stored answers that carry
one): encrypted, not hashed. Fernet (AES-128-CBC with HMAC-SHA256) under a deployment key.

The key setting may list several comma-separated keys to rotate: the first seals, any opens."""

from cryptography.fernet import Fernet, MultiFernet


class SecretBox:
    def __init__(self, keys: str, *, setting: str) -> None:
        """`setting` names the variable the keys come from, for the error when there are none."""
        if not keys.strip():
            raise ValueError(
                f"{setting} is required: it encrypts secrets at rest. Make one with:"
                ' python -c "from cryptography.fernet import Fernet;'
                ' print(Fernet.generate_key().decode())"'
            )
        self._fernet = MultiFernet([Fernet(key.strip()) for key in keys.split(",")])

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        return self._fernet.decrypt(sealed).decode()

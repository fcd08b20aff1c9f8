"""The relayer account's key, from a setting or a secret file, and the signing it does."""

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from settlement_svc.settings import SettlementSettings


@dataclass(frozen=True)
class SignedTransaction:
    raw: bytes
    hash: str


class RelayerKey:
    """Holds the key in memory only; neither it nor the settings' secret is ever logged."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    @classmethod
    def of(cls, settings: SettlementSettings) -> "RelayerKey | None":
        """The configured key; None when the relay is not configured. A file wins over the
        inline setting (a mounted secret)."""
        if settings.relayer_private_key_file is not None:
            key = settings.relayer_private_key_file.read_text().strip()
        elif settings.relayer_private_key is not None:
            key = settings.relayer_private_key.get_secret_value().strip()
        else:
            return None
        return cls(Account.from_key(key))

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign(self, transaction: dict[str, Any]) -> SignedTransaction:
        signed = self._account.sign_transaction(transaction)
        return SignedTransaction(bytes(signed.raw_transaction), "0x" + signed.hash.hex())

"""The keys of the platform's own accounts (the relayer, the collector), from a setting or a
secret file, and the signing they do."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from pydantic import SecretStr


@dataclass(frozen=True)
class SignedTransaction:
    raw: bytes
    hash: str


class AccountKey:
    """Holds the key in memory only; neither it nor the settings' secret is ever logged."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    @classmethod
    def load(cls, inline: SecretStr | None, file: Path | None) -> "AccountKey | None":
        """The configured key; None when neither setting is set. A file wins over the inline
        setting (a mounted secret)."""
        if file is not None:
            key = file.read_text().strip()
        elif inline is not None:
            key = inline.get_secret_value().strip()
        else:
            return None
        return cls(Account.from_key(key))

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign(self, transaction: dict[str, Any]) -> SignedTransaction:
        signed = self._account.sign_transaction(transaction)
        return SignedTransaction(bytes(signed.raw_transaction), "0x" + signed.hash.hex())

    def reprice(self, raw: bytes, chain_id: int, gas_price: int) -> SignedTransaction:
        """The same call at the same nonce, signed again with another gas price (a replacement
        of a transaction `sign` made: legacy, EIP-155)."""
        nonce, _, gas, to, value, data, *_ = rlp.decode(raw)
        return self.sign(
            {
                "chainId": chain_id,
                "nonce": int.from_bytes(nonce),
                "gasPrice": gas_price,
                "gas": int.from_bytes(gas),
                "to": to_checksum_address(to),
                "value": int.from_bytes(value),
                "data": data,
            }
        )


def gas_price_of(raw: bytes) -> int:
    """The gas price a transaction `AccountKey.sign` made pays."""
    return int.from_bytes(rlp.decode(raw)[1])

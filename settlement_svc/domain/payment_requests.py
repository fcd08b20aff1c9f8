"""Payment requests: what a subscriber pays for one invoice or checkout session, bound on chain.

The reference hash is 32 random bytes the platform makes. It is the nonce of the payer's EIP-3009
authorization, so the token itself records which request a payment answers
(`authorizationState(payer, nonce)`, `AuthorizationUsed(payer, nonce)`); no contract of ours is
involved and real USDC works unchanged.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from settlement_svc.domain.verification import to_base_units


class PaymentRequestStatus(StrEnum):
    OPEN = "OPEN"
    PAID = "PAID"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class PaymentRequest:
    reference_hash: str
    merchant_id: str
    invoice_id: str
    checkout_session_id: str
    user_id: str
    amount: Decimal
    # Fixed when issued: the merchant's payout wallet then, the configured token and chain.
    payee: str
    token: str
    chain_id: int
    create_time: datetime
    expire_time: datetime

    @property
    def amount_base_units(self) -> int:
        return to_base_units(self.amount)

    @property
    def payable_id(self) -> str:
        return self.invoice_id or self.checkout_session_id

    def expired(self, at: datetime) -> bool:
        return at >= self.expire_time

    def status(self, at: datetime, settlement_id: str | None) -> PaymentRequestStatus:
        """PAID once a settlement bound to it is confirmed, EXPIRED past its expiry unpaid."""
        if settlement_id:
            return PaymentRequestStatus.PAID
        return PaymentRequestStatus.EXPIRED if self.expired(at) else PaymentRequestStatus.OPEN

    @property
    def uri(self) -> str:
        """EIP-681: a plain ERC-20 transfer of the amount to the payee, for wallets that scan a
        QR code. It carries no reference, so such a payment is proved by its transaction hash."""
        return (
            f"ethereum:{self.token}@{self.chain_id}/transfer"
            f"?address={self.payee}&uint256={self.amount_base_units}"
        )


def new_reference_hash() -> str:
    """32 random bytes, 0x + 64 lowercase hex digits: unguessable, so unique in practice (the
    primary key makes sure)."""
    return "0x" + secrets.token_hex(32)

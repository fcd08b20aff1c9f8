"""Mandates: a subscriber's standing authorization, held by the mandate contract, for the
platform's collector to pull the invoices of one merchant from the subscriber's wallet, within a
cap per period and until an expiry.

The contract holds one mandate per (payer wallet, merchant wallet). The platform's record ties it
to the merchant's subscriber: the invoices it collects are that subscriber's with that merchant.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from settlement_svc.domain.collections import OnChainMandate
from settlement_svc.domain.verification import to_base_units


class MandateStatus(StrEnum):
    # The signed mandate is relayed; the contract does not hold it yet.
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    # Revoked by the payer on chain, replaced by a later mandate, or expired.
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class Mandate:
    id: str
    merchant_id: str
    user_id: str
    subscription_id: str
    payer_wallet_address: str
    # The merchant's payout wallet when the mandate was made: the only wallet it pays.
    merchant_wallet_address: str
    contract_address: str
    cap: Decimal
    period_seconds: int
    expire_time: datetime
    status: MandateStatus
    transaction_hash: str
    create_time: datetime

    @property
    def cap_base_units(self) -> int:
        return to_base_units(self.cap)

    def held_by(self, on_chain: OnChainMandate) -> bool:
        """Whether the contract holds this very mandate (not an earlier or a later one)."""
        return (
            on_chain.cap == self.cap_base_units
            and on_chain.period == self.period_seconds
            and on_chain.expiry == int(self.expire_time.timestamp())
        )

    def now_status(self, on_chain: OnChainMandate, at: int) -> MandateStatus:
        """What the chain says of this mandate at block time `at`."""
        if not self.held_by(on_chain):
            # Never mined yet, or replaced by the payer since.
            return self.status if self.status is MandateStatus.PENDING else MandateStatus.REVOKED
        if on_chain.revoked:
            return MandateStatus.REVOKED
        if at >= on_chain.expiry:
            return MandateStatus.EXPIRED
        return MandateStatus.ACTIVE

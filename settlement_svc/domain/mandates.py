"""Mandates: a subscriber's standing authorization, held by the mandate contract, for the
platform's collector to pull the invoices of one merchant from the subscriber's wallet, within a
cap per period and until an expiry.

The contract holds one mandate per (payer wallet, merchant wallet). The platform's record ties it
to the merchant's subscriber: the invoices it collects are that subscriber's with that merchant.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from settlement_svc.domain.mandate_logs import MandateChange, MandateEvent
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

    def has_terms(self, cap: int, period: int, expiry: int) -> bool:
        """Whether these are this mandate's terms (base units, seconds, a timestamp)."""
        return (cap, period, expiry) == (
            self.cap_base_units,
            self.period_seconds,
            int(self.expire_time.timestamp()),
        )


def moves_on(live: Sequence[Mandate], event: MandateEvent) -> list[tuple[Mandate, MandateStatus]]:
    """How the platform's PENDING and ACTIVE records of one (payer, merchant wallet) pair move
    when the contract shows `event`. A creation is held by the newest PENDING record of its
    terms (the one relayed), else by an ACTIVE one of the same terms (made again on chain):
    that one is ACTIVE, and every other ACTIVE one is REVOKED, since the contract holds one
    mandate per pair. A revocation ends the ACTIVE ones. PENDING records of other terms wait for
    their own creation."""
    if event.change is MandateChange.REVOKED:
        return [(m, MandateStatus.REVOKED) for m in live if m.status is MandateStatus.ACTIVE]
    matching = [m for m in live if m.has_terms(event.cap, event.period, event.expiry)]
    pending = [m for m in matching if m.status is MandateStatus.PENDING]
    holder = max(pending, key=lambda m: (m.create_time, m.id)) if pending else None
    if holder is None:
        holder = next((m for m in matching if m.status is MandateStatus.ACTIVE), None)
    moves = (
        []
        if holder is None or holder.status is MandateStatus.ACTIVE
        else [(holder, MandateStatus.ACTIVE)]
    )
    return moves + [
        (m, MandateStatus.REVOKED)
        for m in live
        if m.status is MandateStatus.ACTIVE and m is not holder
    ]

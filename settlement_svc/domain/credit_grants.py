"""Prepaid credits: a subscriber's grants with one merchant, and the rules that spend them.

A grant is promotional (the merchant's, with a priority and perhaps an expiry), a payment's
(USDC that paid more than was owed) or a top-up's (a paid top-up invoice); the last two never
expire. The ledger account `credit:<user>` holds
the sum of what the grants have left. Credits are spent on an invoice as it is finalized, once
per application key: grants of the lowest priority number first, then the soonest to expire,
then the oldest. What an application gives back (its invoice voided, or finalized again for
less) returns to the grants it came from, the last spent first.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from settlement_svc.domain.ledger import ZERO

MAX_PRIORITY = 1000
MAX_DESCRIPTION = 500


class CreditSource(StrEnum):
    PROMOTIONAL = "PROMOTIONAL"
    PAYMENT = "PAYMENT"
    TOP_UP = "TOP_UP"


@dataclass(frozen=True)
class TopUp:
    """A top-up invoice the ledger recorded: once paid, `amount` of credits for the subscriber."""

    merchant_id: str
    invoice_id: str
    user_id: str
    amount: Decimal


class CreditGrantStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SPENT = "SPENT"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class CreditGrant:
    id: str
    merchant_id: str
    user_id: str
    source: CreditSource
    amount: Decimal
    remaining: Decimal
    priority: int
    expire_time: datetime | None
    description: str
    # The settlement or credit whose USDC funded a payment's grant, the invoice of a top-up's;
    # "" for a promotional one.
    reference: str
    create_time: datetime
    # What the expiry wrote off, in all.
    expired_amount: Decimal = ZERO

    def expired(self, now: datetime) -> bool:
        return self.expire_time is not None and self.expire_time <= now

    def status(self, now: datetime) -> CreditGrantStatus:
        if self.expired(now):
            return CreditGrantStatus.EXPIRED
        return CreditGrantStatus.ACTIVE if self.remaining > 0 else CreditGrantStatus.SPENT


@dataclass(frozen=True)
class Use:
    """Credits of one grant spent on (or given back by) one application."""

    grant_id: str
    amount: Decimal


@dataclass(frozen=True)
class CreditApplication:
    """The credits spent on one invoice, once per key, and the grants they came from in the
    order they were spent."""

    key: str
    invoice_id: str
    user_id: str
    amount: Decimal
    uses: tuple[Use, ...]


@dataclass(frozen=True)
class CreditBalance:
    balance: Decimal
    # The part of the balance that expires, and the soonest expiry.
    expiring: Decimal
    next_expire_time: datetime | None


def spending_order(grants: Sequence[CreditGrant], now: datetime) -> list[CreditGrant]:
    """The grants that can be spent now, in the order they are spent."""
    live = [g for g in grants if g.remaining > 0 and not g.expired(now)]
    return sorted(
        live,
        key=lambda g: (
            g.priority,
            g.expire_time is None,
            g.expire_time or g.create_time,
            g.create_time,
            g.id,
        ),
    )


def spend(grants: Sequence[CreditGrant], amount: Decimal, now: datetime) -> list[Use]:
    """What to take from each grant to pay `amount`, as far as the live grants go."""
    uses: list[Use] = []
    left = amount
    for grant in spending_order(grants, now):
        if left == 0:
            break
        taken = min(grant.remaining, left)
        uses.append(Use(grant.id, taken))
        left -= taken
    return uses


def give_back(spent: Sequence[Use], amount: Decimal) -> list[Use]:
    """What returns to each grant when an application spent as `spent` (in the order it spent)
    gives back `amount`: to the grants spent last first."""
    if amount > sum((u.amount for u in spent), ZERO):
        raise ValueError(f"{amount} is more than the application spent")
    returned: list[Use] = []
    left = amount
    for use in reversed(spent):
        if left == 0:
            break
        back = min(use.amount, left)
        returned.append(Use(use.grant_id, back))
        left -= back
    return returned


def balance(grants: Sequence[CreditGrant], now: datetime) -> CreditBalance:
    live = spending_order(grants, now)
    expiring = [g for g in live if g.expire_time is not None]
    return CreditBalance(
        balance=sum((g.remaining for g in live), ZERO),
        expiring=sum((g.remaining for g in expiring), ZERO),
        next_expire_time=min((g.expire_time for g in expiring if g.expire_time), default=None),
    )

"""Collecting an invoice under the subscriber's mandate, and dunning a collection that fails.

Before anything is signed, what the chain holds is checked against the collection: the mandate's
state, the cap left in its current period, the payer's balance and the allowance the payer gave
the mandate contract. A collection that would fail costs no gas and fails with its reason; the
next attempt waits for the retry schedule.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum


class CollectionFailure(StrEnum):
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    ALLOWANCE_TOO_LOW = "ALLOWANCE_TOO_LOW"
    CAP_EXCEEDED = "CAP_EXCEEDED"
    MANDATE_REVOKED = "MANDATE_REVOKED"
    MANDATE_EXPIRED = "MANDATE_EXPIRED"
    NO_MANDATE = "NO_MANDATE"
    # The node refused the call for another reason (its message is the detail).
    REVERTED = "REVERTED"


class CollectionStatus(StrEnum):
    # Waiting for its next attempt.
    DUE = "DUE"
    # Its transaction is signed and stored; the settlement it made confirms it.
    SENT = "SENT"
    # Paid (by this collection or any other payment), voided, or out of attempts.
    DONE = "DONE"


@dataclass(frozen=True)
class OnChainMandate:
    """The contract's record of a payer's mandate for one merchant wallet (`mandates(payer,
    merchant)`); a cap of 0 means there is none."""

    cap: int
    period: int
    start: int
    expiry: int
    period_index: int
    spent: int
    revoked: bool

    def available(self, at: int) -> int:
        """What `collect` accepts at block time `at`, by the mandate alone (the contract's
        `available`)."""
        if self.cap == 0 or self.revoked or at >= self.expiry:
            return 0
        if (at - self.start) // self.period != self.period_index:
            return self.cap
        return self.cap - self.spent


@dataclass(frozen=True)
class PayerFunds:
    balance: int
    # What the payer allows the mandate contract to move.
    allowance: int


def precheck(
    mandate: OnChainMandate, funds: PayerFunds, amount: int, at: int
) -> tuple[CollectionFailure, str] | None:
    """Why collecting `amount` base units at block time `at` would fail, in the contract's own
    order of checks; None when it would pass."""
    if mandate.cap == 0:
        return CollectionFailure.NO_MANDATE, "the payer has no mandate for the merchant's wallet"
    if mandate.revoked:
        return CollectionFailure.MANDATE_REVOKED, "the payer revoked the mandate"
    if at >= mandate.expiry:
        return CollectionFailure.MANDATE_EXPIRED, "the mandate expired"
    available = mandate.available(at)
    if amount > available:
        return (
            CollectionFailure.CAP_EXCEEDED,
            f"{amount} base units due, {available} left under the cap this period",
        )
    if funds.balance < amount:
        return (
            CollectionFailure.INSUFFICIENT_BALANCE,
            f"{amount} base units due, the payer holds {funds.balance}",
        )
    if funds.allowance < amount:
        return (
            CollectionFailure.ALLOWANCE_TOO_LOW,
            f"{amount} base units due, the payer allows {funds.allowance}",
        )
    return None


def next_attempt(
    schedule: Sequence[timedelta], first_failure: datetime, failures: int
) -> datetime | None:
    """When the attempt after `failures` failed ones is due, counted from the first failure
    (Stripe's smart-retry shape: 1 h, 1 day, 3 days, 7 days); None after the last."""
    if failures > len(schedule):
        return None
    return first_failure + schedule[failures - 1]


@dataclass(frozen=True)
class Collection:
    id: str
    merchant_id: str
    invoice_id: str
    user_id: str
    mandate_id: str
    # The collect call's reference (32 random bytes): the contract pays it at most once.
    reference_hash: str
    amount: Decimal
    status: CollectionStatus
    # Failed attempts so far; the next one is due at next_attempt_time.
    failures: int
    next_attempt_time: datetime | None
    first_failure_time: datetime | None
    settlement_id: str
    create_time: datetime


@dataclass(frozen=True)
class CollectionAttempt:
    collection_id: str
    number: int
    attempt_time: datetime
    # None for an attempt that sent its transaction.
    failure: CollectionFailure | None
    detail: str
    next_attempt_time: datetime | None

"""Metering's domain types."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from pricing.charges import UsageCharge
from service_kit.clock import own_time
from service_kit.errors import DomainError


class Aggregation(StrEnum):
    SUM = "SUM"
    COUNT = "COUNT"
    MAX = "MAX"
    LAST = "LAST"
    UNIQUE_COUNT = "UNIQUE_COUNT"


class SubscriptionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"
    PAUSED = "PAUSED"
    CANCELED = "CANCELED"


class EventOutcome(StrEnum):
    ACCEPTED = "ACCEPTED"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class Meter:
    id: str
    merchant_id: str
    service_id: str
    event_key: str
    aggregation: Aggregation
    unique_property: str
    display_name: str
    create_time: datetime


@dataclass(frozen=True)
class UsageLimit:
    """The most of an event key a subscription may use per billing period: its aggregate per its
    meter (SUM without one). A hard limit is enforced at ingestion; a soft one only reported."""

    event_key: str
    quantity: Decimal
    hard: bool


@dataclass(frozen=True)
class PrepaidAllowance:
    """What a prepaid-only subscription may consume: its usage from `since` on (the start of its
    period, or of the one before while that one's invoice has not spent its credits yet),
    priced with its plan's charges, each period on its own, may cost at most `credits`."""

    credits: Decimal
    since: datetime
    charges: tuple[UsageCharge, ...]


@dataclass(frozen=True)
class SubscriptionState:
    """Metering's replica of a subscription: what event validation needs, kept locally."""

    subscription_id: str
    merchant_id: str
    service_id: str
    user_id: str
    status: SubscriptionStatus
    current_period_start: datetime
    current_period_end: datetime
    version: int
    test_clock_time: datetime | None = None
    # When its billable time ends, once known (a cancellation at the period end): no event from
    # then on is billed, so none is accepted.
    end_time: datetime | None = None
    # Its plan's entitlements.
    features: tuple[str, ...] = ()
    limits: tuple[UsageLimit, ...] = ()
    # Set when its plan is prepaid-only.
    prepaid: PrepaidAllowance | None = None

    def limit_of(self, event_key: str) -> UsageLimit | None:
        return next((limit for limit in self.limits if limit.event_key == event_key), None)

    def now(self, real_now: datetime) -> datetime:
        """The subscription's present: a test clock may have moved it ahead of real time."""
        return own_time(real_now, self.test_clock_time)


@dataclass(frozen=True)
class InvoiceReference:
    invoice_id: str
    merchant_id: str
    service_id: str
    user_id: str


# A batch makes thousands of drafts, events and results: they are named tuples and a slotted
# dataclass, each built in under half the time of a frozen dataclass.
class UsageEventDraft(NamedTuple):
    """An event as submitted: nothing checked yet."""

    service_id: str
    subscription_id: str
    user_id: str
    event_key: str
    quantity: str
    occurred_at: datetime | None
    invoice_id: str
    idempotency_key: str
    properties: dict[str, str]


class UsageEvent(NamedTuple):
    """A validated event, ready to store."""

    id: str
    merchant_id: str
    service_id: str
    subscription_id: str
    user_id: str
    event_key: str
    quantity: Decimal
    occurred_at: datetime
    invoice_id: str
    idempotency_key: str
    properties: dict[str, str]


@dataclass(frozen=True)
class StoredUsageEvent:
    event: UsageEvent
    receive_time: datetime
    cancel_time: datetime | None
    cancel_reason: str
    # Where the event sorts in its subscription's history: (occurred_at, ingestion sequence).
    position: tuple[datetime, int]


@dataclass(slots=True)
class EventResult:
    index: int
    outcome: EventOutcome
    event_id: str = ""
    # Why a REJECTED event was refused.
    error: DomainError | None = None

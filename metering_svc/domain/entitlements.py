"""Entitlements: whether a subscription's plan includes a feature, and whether more usage of an
event key fits the plan's limit for the billing period.

A limit bounds the period's aggregate of the key per its meter. What one more event can make of
that aggregate depends on the aggregation: SUM adds the quantity, COUNT adds one event, MAX and
LAST may become the event's quantity, UNIQUE_COUNT adds one when the event's value is new to the
period.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from metering_svc.domain.model import (
    Aggregation,
    PrepaidAllowance,
    SubscriptionState,
    SubscriptionStatus,
    UsageLimit,
)
from pricing.charges import usage_cost
from service_kit.decimals import format_decimal, round_usdc
from service_kit.errors import FailedPrecondition

ZERO = Decimal(0)
# Where the usage of a period whose end metering does not know yet is read up to.
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


class EntitlementReason(StrEnum):
    FEATURE_INCLUDED = "FEATURE_INCLUDED"
    FEATURE_NOT_INCLUDED = "FEATURE_NOT_INCLUDED"
    NO_LIMIT = "NO_LIMIT"
    WITHIN_LIMIT = "WITHIN_LIMIT"
    SOFT_LIMIT_EXCEEDED = "SOFT_LIMIT_EXCEEDED"
    HARD_LIMIT_EXCEEDED = "HARD_LIMIT_EXCEEDED"
    SUBSCRIPTION_INACTIVE = "SUBSCRIPTION_INACTIVE"
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"


@dataclass(frozen=True)
class BillingPeriod:
    """The period a moment's usage counts in: the replica's open period, or, from its end until
    invoicing opens the next one, the time after it (`end` None: not known to metering yet)."""

    start: datetime
    end: datetime | None

    @property
    def window_end(self) -> datetime:
        return self.end or END_OF_TIME


@dataclass(frozen=True)
class Entitlement:
    allowed: bool
    reason: EntitlementReason
    period: BillingPeriod
    limit: UsageLimit | None = None
    used: Decimal = ZERO
    # A prepaid-only plan's: its credits less the cost of the usage they pay for so far.
    credits_left: Decimal | None = None

    @property
    def remaining(self) -> Decimal | None:
        """What is left of the limit, never below zero; None without a limit."""
        return None if self.limit is None else max(self.limit.quantity - self.used, ZERO)


@dataclass(frozen=True)
class UsageSnapshot:
    """What a check knows of a subscription and its use of one event key in a period (of no key,
    for a feature)."""

    state: SubscriptionState
    aggregation: Aggregation
    used: Decimal
    period: BillingPeriod
    # A prepaid-only subscription's: the usage of each period its credits pay for, by start.
    prepaid_usage: tuple[tuple[datetime, Mapping[str, Decimal]], ...] = ()


def period_of(state: SubscriptionState, moment: datetime) -> BillingPeriod:
    if moment < state.current_period_end:
        return BillingPeriod(state.current_period_start, state.current_period_end)
    return BillingPeriod(state.current_period_end, None)


def unbilled_periods(state: SubscriptionState) -> list[BillingPeriod]:
    """The periods a prepaid-only subscription's credits pay for: the one before while its
    invoice has not spent them yet (from the allowance's `since`), the open one, and the time
    after its end until invoicing opens the next."""
    assert state.prepaid is not None
    periods = []
    if state.prepaid.since < state.current_period_start:
        periods.append(BillingPeriod(state.prepaid.since, state.current_period_start))
    periods.append(BillingPeriod(state.current_period_start, state.current_period_end))
    periods.append(BillingPeriod(state.current_period_end, None))
    return periods


def usage_after(aggregation: Aggregation, used: Decimal, quantity: Decimal) -> Decimal:
    """The most the aggregate can be once `quantity` more is used: for COUNT and UNIQUE_COUNT,
    `quantity` counts events or values."""
    if aggregation in (Aggregation.MAX, Aggregation.LAST):
        return max(used, quantity)
    return used + quantity


def passes(limit: UsageLimit, used: Decimal, after: Decimal) -> bool:
    """Whether usage going from `used` to `after` passes the limit: raises the aggregate above
    it (what a lowered limit already left above it is not made worse by usage that adds
    nothing)."""
    return after > limit.quantity and after > used


def check_feature(state: SubscriptionState, feature: str, now: datetime) -> Entitlement:
    period = period_of(state, state.now(now))
    if state.status is not SubscriptionStatus.ACTIVE:
        return Entitlement(False, EntitlementReason.SUBSCRIPTION_INACTIVE, period)
    if feature in state.features:
        return Entitlement(True, EntitlementReason.FEATURE_INCLUDED, period)
    return Entitlement(False, EntitlementReason.FEATURE_NOT_INCLUDED, period)


def check_usage(snapshot: UsageSnapshot, event_key: str, quantity: Decimal) -> Entitlement:
    """Whether `quantity` more of the key fits its limit and, for a prepaid-only plan, the
    subscriber's credits."""
    found = _check_limit(
        snapshot.state,
        snapshot.state.limit_of(event_key),
        snapshot.aggregation,
        snapshot.used,
        quantity,
        snapshot.period,
    )
    allowance = snapshot.state.prepaid
    if allowance is None or snapshot.state.status is not SubscriptionStatus.ACTIVE:
        return found
    after = usage_after(snapshot.aggregation, snapshot.used, quantity)
    before = cost = ZERO
    for start, usage in snapshot.prepaid_usage:
        spent = usage_cost(allowance.charges, usage)
        before += spent
        if start == snapshot.period.start:
            spent = usage_cost(allowance.charges, {**usage, event_key: after})
        cost += spent
    left = allowance.credits - before
    if found.allowed and cost > allowance.credits and cost > before:
        return replace(
            found, allowed=False, reason=EntitlementReason.INSUFFICIENT_CREDITS, credits_left=left
        )
    return replace(found, credits_left=left)


def _check_limit(
    state: SubscriptionState,
    limit: UsageLimit | None,
    aggregation: Aggregation,
    used: Decimal,
    quantity: Decimal,
    period: BillingPeriod,
) -> Entitlement:
    """Whether `quantity` more of the limit's key fits, the period having used `used`."""
    if state.status is not SubscriptionStatus.ACTIVE:
        return Entitlement(False, EntitlementReason.SUBSCRIPTION_INACTIVE, period, limit, used)
    if limit is None:
        return Entitlement(True, EntitlementReason.NO_LIMIT, period, None, used)
    if not passes(limit, used, usage_after(aggregation, used, quantity)):
        return Entitlement(True, EntitlementReason.WITHIN_LIMIT, period, limit, used)
    if limit.hard:
        return Entitlement(False, EntitlementReason.HARD_LIMIT_EXCEEDED, period, limit, used)
    return Entitlement(True, EntitlementReason.SOFT_LIMIT_EXCEEDED, period, limit, used)


def credits_exceeded(
    allowance: PrepaidAllowance, before: Decimal, after: Decimal
) -> FailedPrecondition:
    """The rejection of an event a prepaid-only subscription's credits cannot pay for."""
    credits, before_text, after_text = (
        f"{round_usdc(x):f}" for x in (allowance.credits, before, after)
    )
    return FailedPrecondition(
        f"the plan is prepaid-only and the subscriber's credits are {credits} USDC: this event "
        f"would take the cost of the usage they pay for from {before_text} to {after_text} USDC",
        field="quantity",
    )


def limit_exceeded(limit: UsageLimit, used: Decimal, after: Decimal) -> FailedPrecondition:
    """The rejection of an event that would take its key's usage past a hard limit."""
    return FailedPrecondition(
        f"the plan's hard limit on {limit.event_key} is {format_decimal(limit.quantity)} per "
        f"billing period: this event would take its usage from {format_decimal(used)} to "
        f"{format_decimal(after)}",
        field="quantity",
    )

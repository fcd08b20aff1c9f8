"""Billing period boundaries, counted from the subscription's anchor, the usage each period's
invoice bills, and the state a subscription moves to when its period ends."""

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from invoicing_svc.domain.model import BillingInterval, Plan, Subscription, SubscriptionStatus
from invoicing_svc.domain.plan_changes import period_parts


def _add_months(anchor: datetime, months: int) -> datetime:
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_start(anchor: datetime, interval: BillingInterval, count: int, index: int) -> datetime:
    """Start of period `index` (0 = the first) of a subscription anchored at `anchor`."""
    steps = count * index
    match interval:
        case BillingInterval.DAY:
            return anchor + timedelta(days=steps)
        case BillingInterval.WEEK:
            return anchor + timedelta(weeks=steps)
        case BillingInterval.MONTH:
            return _add_months(anchor, steps)
        case BillingInterval.YEAR:
            return _add_months(anchor, 12 * steps)


def period_bounds(
    anchor: datetime, interval: BillingInterval, count: int, index: int
) -> tuple[datetime, datetime]:
    return (
        period_start(anchor, interval, count, index),
        period_start(anchor, interval, count, index + 1),
    )


def billable_end(subscription: Subscription) -> datetime | None:
    """When the subscription's billable time [start, end) ends, once that is known: at its
    cancellation, or at the end of the period it is canceled at. Metering refuses events from
    then on."""
    if subscription.cancel_time is not None:
        return subscription.cancel_time
    return subscription.current_period_end if subscription.cancel_at_period_end else None


@dataclass(frozen=True)
class BilledUsage:
    """The events a period's invoice bills, by `occurred_at`: [start, end), or every one from
    `start` on when `end` is None."""

    merchant_id: str
    subscription_id: str
    start: datetime
    end: datetime | None


def usage_windows(subscription: Subscription, end: datetime | None) -> list[BilledUsage]:
    """The usage of each part of the current period (`plan_changes.period_parts`), the last
    part's up to `end`. Every event is in exactly one part: the parts meet at the changes."""
    parts = period_parts(subscription)
    return [
        BilledUsage(
            merchant_id=subscription.merchant_id,
            subscription_id=subscription.id,
            start=part.start,
            end=part.end if part is not parts[-1] else end,
        )
        for part in parts
    ]


def billed_end(period: Subscription, following: Subscription) -> datetime | None:
    """Where a period close stops billing events: at the period's end, later ones (the clock
    skew, the grace window) being the next period's. The final invoice, after which the
    subscription is canceled, bills every event from its last part's start on (None): once
    canceled (or once its end is known) metering refuses events, so every later one it holds
    was acknowledged before, and this is the last invoice to bill it. A pause's invoice stops
    at the pause: events stamped after it are the next invoice's, whose usage starts there (the
    resumed period's, or the final one's of a subscription canceled while paused)."""
    if following.status is SubscriptionStatus.PAUSED:
        return following.pause_time
    final = following.status is SubscriptionStatus.CANCELED
    return None if final else period.current_period_end


def after_credits_spent(following: Subscription, plan: Plan) -> Subscription:
    """The state a period close stores. A prepaid-only subscription's is one version past the
    one pushed before its usage was read (whose allowance still counted the closed period's
    usage against the credits), so that its push, with the credits its invoice spent, is the
    newer."""
    if plan.prepaid_only and following.status is SubscriptionStatus.ACTIVE:
        return replace(following, version=following.version + 1)
    return following


def canceled_at(subscription: Subscription, at: datetime) -> Subscription:
    """The subscription ended at `at`."""
    return replace(
        subscription,
        status=SubscriptionStatus.CANCELED,
        cancel_time=at,
        version=subscription.version + 1,
    )


def following_state(subscription: Subscription, plans: Mapping[str, Plan]) -> Subscription:
    """The next state of a subscription whose period ended: the next period, on the plan a
    change scheduled for the period's end if one was, or its end. A plan of another interval
    starts its periods again from there."""
    if subscription.cancel_at_period_end:
        return canceled_at(subscription, subscription.current_period_end)
    plan = plans[subscription.plan_id]
    following = plans[subscription.scheduled_plan_id or subscription.plan_id]
    anchor, index = subscription.billing_anchor, subscription.period_index + 1
    rhythm = (following.billing_interval, following.interval_count)
    if rhythm != (plan.billing_interval, plan.interval_count):
        anchor, index = subscription.current_period_end, 0
    start, end = period_bounds(anchor, *rhythm, index)
    return replace(
        subscription,
        plan_id=following.id,
        billing_anchor=anchor,
        period_index=index,
        current_period_start=start,
        current_period_end=end,
        plan_segments=(),
        fee_plan_id="",
        scheduled_plan_id="",
        pending_lines=(),
        usage_from=None,
        version=subscription.version + 1,
    )

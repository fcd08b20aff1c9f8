"""Changing a subscription's plan: now, which splits its current period into parts each priced
by its own plan, or at the period's end; and what the change does to the fixed fee (Stripe's
`proration_behavior`).

The fee of a period is owed by days, every started day counting, as when a subscription is
canceled: the day of a change is the old plan's. A period billed in arrears owes each plan's fee
for its part of the period. A period whose fee was paid up front (the first, at checkout) gets
Stripe's two proration lines: a credit for the unused time on the plan paid for and a charge for
the remaining time on the new one.
"""

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from invoicing_svc.domain.model import (
    InvoiceLine,
    Plan,
    PlanSegment,
    Subscription,
    SubscriptionStatus,
)
from invoicing_svc.domain.plans import fixed_fee
from service_kit.decimals import round_usdc_fraction
from service_kit.errors import FailedPrecondition, InvalidArgument

DAY = timedelta(days=1)


class ChangeTiming(StrEnum):
    NOW = "NOW"
    PERIOD_END = "PERIOD_END"


class ProrationBehavior(StrEnum):
    """What a change does to the fixed fee of the current period (Stripe's names)."""

    # The fee follows the plans' days; up front, the prorations wait for the period's invoice.
    CREATE_PRORATIONS = "CREATE_PRORATIONS"
    # The current period's fee stays the old plan's; the new fee starts with the next period.
    NONE = "NONE"
    # As CREATE_PRORATIONS, but prorations of a fee paid up front are invoiced at once when they
    # add up to a charge (an upgrade); a credit still waits for the period's invoice.
    ALWAYS_INVOICE = "ALWAYS_INVOICE"


@dataclass(frozen=True)
class PeriodPart:
    """A part [start, end) of the current period under one plan."""

    plan_id: str
    fee_plan_id: str
    start: datetime
    end: datetime


def period_parts(subscription: Subscription) -> list[PeriodPart]:
    """The parts of the subscription's current period, in time order; the last is the current
    plan's, up to the period's end."""
    parts: list[PeriodPart] = []
    start = subscription.usage_from or subscription.current_period_start
    for segment in subscription.plan_segments:
        parts.append(PeriodPart(segment.plan_id, segment.fee_plan_id, start, segment.end))
        start = segment.end
    fee_plan_id = subscription.fee_plan_id or subscription.plan_id
    parts.append(
        PeriodPart(subscription.plan_id, fee_plan_id, start, subscription.current_period_end)
    )
    return parts


def plans_involved(subscription: Subscription) -> set[str]:
    """The ids of every plan the subscription's current period is priced or charged by, and of
    the plan a change schedules for its end."""
    ids = {subscription.plan_id, subscription.fee_plan_id, subscription.scheduled_plan_id}
    for segment in subscription.plan_segments:
        ids |= {segment.plan_id, segment.fee_plan_id}
    return ids - {""}


def elapsed_days(period_start: datetime, period_end: datetime, at: datetime) -> int:
    """The days of the period started by `at` (at most the period's days)."""
    at = min(max(at, period_start), period_end)
    return math.ceil((at - period_start) / DAY)


def period_days(period_start: datetime, period_end: datetime) -> int:
    return elapsed_days(period_start, period_end, period_end)


def remaining_share(period_start: datetime, period_end: datetime, at: datetime) -> Fraction:
    """The part of the period's fee not owed by `at`: the days not started yet."""
    days = period_days(period_start, period_end)
    return Fraction(days - elapsed_days(period_start, period_end, at), days)


def fee_up_front(subscription: Subscription) -> bool:
    """Whether the current period's fee was paid before it (at checkout)."""
    paid_until = subscription.fee_prepaid_until
    return paid_until is not None and paid_until >= subscription.current_period_end


def _share_text(share: Fraction) -> str:
    return f"{share.numerator}/{share.denominator} of the period"


def _unused_time(plan: Plan, share: Fraction, at: datetime) -> list[InvoiceLine]:
    """The credit for the part `share` of the plan's fee not used after `at`."""
    if (fee := fixed_fee(plan)) <= 0:
        return []
    description = f"Unused time on {plan.name} after {at:%Y-%m-%d} ({_share_text(share)})"
    amount = -round_usdc_fraction(Fraction(fee) * share)
    return [InvoiceLine(description, "", Decimal(1), amount)]


def proration_lines(
    paid: Plan, target: Plan, period_start: datetime, period_end: datetime, at: datetime
) -> tuple[InvoiceLine, ...]:
    """Stripe's prorations of a fee paid up front: the unused time on the plan paid for is
    credited, the remaining time on the new plan charged, each rounded once."""
    share = remaining_share(period_start, period_end, at)
    if share == 0:
        return ()
    lines = _unused_time(paid, share, at)
    if (new_fee := fixed_fee(target)) > 0:
        description = f"Remaining time on {target.name} after {at:%Y-%m-%d} ({_share_text(share)})"
        amount = round_usdc_fraction(Fraction(new_fee) * share)
        lines.append(InvoiceLine(description, "", Decimal(1), amount))
    return tuple(lines)


def unused_time_credited(subscription: Subscription, paid: Plan, at: datetime) -> Subscription:
    """The current period with a credit, on its invoice, for the time after `at` of a fee paid
    up front (a pause: the subscriber gets it back on the resumed period's invoices)."""
    if not fee_up_front(subscription):
        return subscription
    start, end = subscription.current_period_start, subscription.current_period_end
    share = remaining_share(start, end, at)
    if share == 0:
        return subscription
    credit = _unused_time(paid, share, at)
    return replace(subscription, pending_lines=(*subscription.pending_lines, *credit))


def canceled_prorations(subscription: Subscription, paid: Plan, at: datetime) -> Subscription:
    """The period of a subscription canceled now at `at`, as its final invoice bills it. A fee
    paid up front is not refunded, but prorations of a change still waiting for this invoice
    charged the new plan's time to the period's end: the time after the cancellation is
    credited back, so no one pays for time after the end (the final invoice never goes below
    zero: the rest is not paid out)."""
    if not subscription.pending_lines:
        return subscription
    return unused_time_credited(subscription, paid, at)


def validate_change(
    subscription: Subscription, current: Plan, target: Plan, timing: ChangeTiming
) -> None:
    """A subscription changes to another plan of its service, while it is not canceled. A
    change to another billing interval takes effect at the period's end, where its periods
    start again from there. Prepaid-only plans never change: metering prices their usage
    against the credits with one plan."""
    if subscription.status in (SubscriptionStatus.CANCELED, SubscriptionStatus.PAUSED):
        raise FailedPrecondition(
            f"subscription {subscription.id} is {subscription.status.value.lower()}", field="id"
        )
    if target.service_id != subscription.service_id:
        raise InvalidArgument(
            f"plan {target.id} is not of the subscription's service {subscription.service_id}",
            field="plan_id",
        )
    if current.prepaid_only or target.prepaid_only:
        raise FailedPrecondition(
            "a prepaid-only subscription does not change plans: cancel it and check out anew",
            field="plan_id",
        )
    if timing is ChangeTiming.PERIOD_END:
        if subscription.cancel_at_period_end:
            raise FailedPrecondition(
                f"subscription {subscription.id} ends at its period's end", field="timing"
            )
        return
    if target.id == current.id:
        raise FailedPrecondition(
            f"subscription {subscription.id} is on plan {target.id} already", field="plan_id"
        )
    if (target.billing_interval, target.interval_count) != (
        current.billing_interval,
        current.interval_count,
    ):
        raise FailedPrecondition(
            "a change to another billing interval takes effect at the period's end "
            "(timing PERIOD_END)",
            field="timing",
        )


@dataclass(frozen=True)
class ChangedNow:
    """A change made now: the subscription after it, and the prorations of a fee paid up front
    (to invoice at once, or already added to the period's invoice)."""

    subscription: Subscription
    prorations: tuple[InvoiceLine, ...]
    invoice_now: bool


def changed_now(
    subscription: Subscription, target: Plan, paid: Plan, at: datetime, behavior: ProrationBehavior
) -> ChangedNow:
    """The subscription on `target` from `at` on; `paid` is the plan its current part's fee is
    charged at (`period_parts`). A change at the period's start replaces the part it starts."""
    (*_, current) = period_parts(subscription)
    fee_plan_id = current.fee_plan_id if behavior is ProrationBehavior.NONE else target.id
    segments = subscription.plan_segments
    if at > current.start:
        segments = (*segments, PlanSegment(current.plan_id, current.fee_plan_id, at))
    prorations: tuple[InvoiceLine, ...] = ()
    if fee_up_front(subscription) and behavior is not ProrationBehavior.NONE:
        start, end = subscription.current_period_start, subscription.current_period_end
        prorations = proration_lines(paid, target, start, end, at)
    charged = sum((line.amount for line in prorations), Decimal(0))
    invoice_now = behavior is ProrationBehavior.ALWAYS_INVOICE and charged > 0
    changed = replace(
        subscription,
        plan_id=target.id,
        fee_plan_id="" if fee_plan_id == target.id else fee_plan_id,
        plan_segments=segments,
        scheduled_plan_id="",
        pending_lines=subscription.pending_lines + (() if invoice_now else prorations),
        version=subscription.version + 1,
    )
    return ChangedNow(changed, prorations, invoice_now)


def scheduled(subscription: Subscription, target: Plan) -> Subscription:
    """The subscription moving to `target` when its period ends; its own plan takes back a
    scheduled change."""
    plan_id = "" if target.id == subscription.plan_id else target.id
    return replace(subscription, scheduled_plan_id=plan_id, version=subscription.version + 1)

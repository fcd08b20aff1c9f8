"""Pausing a subscription and resuming it.

A pause ends the current period at its moment: the period's invoice bills it up to then (its
usage, and the fixed fee by started days, or, for a fee paid up front, a credit for the time
after the pause, carried to the resumed period's invoices). While paused no period runs, no
invoice is made and metering refuses usage. Resuming starts a new period from that moment on
the plan (or the one a change scheduled), billed in arrears. The pause's invoice bills the events
stamped before the pause and the resumed period's usage starts at the pause, so an event
acknowledged before the pause but stamped after it (within the clock skew) is billed once, by
the resumed period. Canceling a paused subscription resumes it and cancels it at once: its final
invoice bills those events, and no fee (no day of its period started).
"""

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from invoicing_svc.domain.model import Plan, Subscription, SubscriptionStatus
from invoicing_svc.domain.periods import period_bounds
from service_kit.errors import FailedPrecondition


def validate_pause(subscription: Subscription, plan: Plan) -> None:
    """Only an ACTIVE subscription pauses, and never a prepaid-only one (its credits pay as it
    goes: there is nothing to pause, and metering allows one such subscription per subscriber)."""
    if subscription.status is not SubscriptionStatus.ACTIVE:
        raise FailedPrecondition(
            f"subscription {subscription.id} is {subscription.status.value}, not ACTIVE",
            field="id",
        )
    if subscription.cancel_at_period_end:
        raise FailedPrecondition(
            f"subscription {subscription.id} ends at its period's end", field="id"
        )
    if plan.prepaid_only:
        raise FailedPrecondition("a prepaid-only subscription does not pause", field="id")
    if subscription.in_trial:
        raise FailedPrecondition(f"subscription {subscription.id} is in its trial", field="id")


def paused(subscription: Subscription, at: datetime) -> Subscription:
    """The subscription paused at `at`: its period's invoice bills the period's parts and
    prorations up to then (a credit it carries is added to the paused state's pending lines)."""
    return replace(
        subscription,
        status=SubscriptionStatus.PAUSED,
        pause_time=at,
        plan_segments=(),
        fee_plan_id="",
        pending_lines=(),
        usage_from=None,
        version=subscription.version + 1,
    )


def resumed(subscription: Subscription, plans: Mapping[str, Plan], at: datetime) -> Subscription:
    """The paused subscription running again from `at`: a new period anchored there, on the
    plan a change scheduled if one did, with the credit its pause carried."""
    if subscription.status is not SubscriptionStatus.PAUSED or subscription.pause_time is None:
        raise FailedPrecondition(f"subscription {subscription.id} is not paused", field="id")
    plan = plans[subscription.scheduled_plan_id or subscription.plan_id]
    start, end = period_bounds(at, plan.billing_interval, plan.interval_count, 0)
    return replace(
        subscription,
        status=SubscriptionStatus.ACTIVE,
        plan_id=plan.id,
        billing_anchor=at,
        period_index=0,
        current_period_start=start,
        current_period_end=end,
        plan_segments=(),
        fee_plan_id="",
        scheduled_plan_id="",
        pause_time=None,
        usage_from=subscription.pause_time,
        version=subscription.version + 1,
    )

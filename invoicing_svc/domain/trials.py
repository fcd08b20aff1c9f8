"""Free trials: a plan's `trial_days` before the first billing period, with no fixed fee.

A subscription with a trial starts with the trial as its first period, `[checkout, trial_end)`;
its periods are then counted from `trial_end` (Stripe's billing anchor at the trial's end). The
trial's invoice bills no fee; its usage is priced and, unless the plan bills trial usage, taken
off again ("Free trial"), so the subscriber sees what it would have cost. At the trial's end a
subscriber without an auto-pay mandate is converted (billed as usual), canceled or paused, per the
plan. `subscription.trial_will_end` goes out three days before the end (at once for a shorter
trial).
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from invoicing_svc.domain.model import (
    InvoiceLine,
    Plan,
    PricingType,
    Subscription,
    SubscriptionStatus,
    TrialEndAction,
)
from invoicing_svc.domain.pauses import paused
from invoicing_svc.domain.periods import canceled_at
from service_kit.errors import InvalidArgument

MAX_TRIAL_DAYS = 730
REMINDER_LEAD = timedelta(days=3)
FREE_TRIAL_LINE = "Free trial"


def validate_trial(plan: Plan) -> None:
    if not 0 <= plan.trial_days <= MAX_TRIAL_DAYS:
        raise InvalidArgument(
            f"plan.trial_days must be 0-{MAX_TRIAL_DAYS}", field="plan.trial_days"
        )
    if plan.trial_days and plan.prepaid_only:
        raise InvalidArgument(
            "a prepaid-only plan has no trial: its credits pay its usage as it happens",
            field="plan.trial_days",
        )
    if not plan.trial_days and (
        plan.trial_usage_billed or plan.trial_end_action is not TrialEndAction.CONVERT
    ):
        raise InvalidArgument(
            "trial_usage_billed and trial_end_action need trial_days", field="plan.trial_days"
        )


def trial_end(plan: Plan, start: datetime) -> datetime | None:
    return start + timedelta(days=plan.trial_days) if plan.trial_days else None


def trial_lines(plan: Plan, usage_lines: Sequence[InvoiceLine]) -> list[InvoiceLine]:
    """What a trial's invoice adds to its usage lines: the usage taken off again, unless the plan
    bills it (a trial never bills a fee)."""
    if plan.trial_usage_billed or plan.pricing_type is PricingType.FIXED_RECURRING:
        return []
    spent = sum((line.amount for line in usage_lines), Decimal(0))
    return [InvoiceLine(FREE_TRIAL_LINE, "", Decimal(1), -spent)] if spent else []


def has_mandate_at(subscription: Subscription, at: datetime) -> bool:
    expires = subscription.mandate_expire_time
    return bool(subscription.mandate_id) and (expires is None or expires > at)


def after_trial(subscription: Subscription, plan: Plan) -> Subscription | None:
    """The state a trial without a mandate ends in, when the plan cancels or pauses it; None to
    go on to the first period."""
    end = subscription.current_period_end
    if not subscription.in_trial or has_mandate_at(subscription, end):
        return None
    match plan.trial_end_action:
        case TrialEndAction.CONVERT:
            return None
        case TrialEndAction.CANCEL:
            return canceled_at(subscription, end)
        case TrialEndAction.PAUSE:
            return paused(subscription, end)


def reminder_due(subscription: Subscription, now: datetime) -> bool:
    """Whether `subscription.trial_will_end` is due (and not sent yet)."""
    end = subscription.trial_end
    return (
        end is not None
        and not subscription.trial_reminded
        and subscription.status is SubscriptionStatus.ACTIVE
        and subscription.in_trial
        and subscription.now(now) >= end - REMINDER_LEAD
    )

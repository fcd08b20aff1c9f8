"""Plan versions and the migration of subscriptions between them (Orb's and OpenMeter's plan
migrations).

A plan's prices never change in place: a new version is a new plan, the next of the same plan
(same service, name, interval, entitlements and trial), with new prices. Subscriptions keep the
version they are on until migrated: one by one with a plan change (now or at the period's end),
or in bulk, where each moves at its next period (a plan change at the period's end). A checkout
naming any version subscribes to the latest. A dry run shows, per subscription, what its next
invoice would be on each version, priced on the current period's usage so far.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from invoicing_svc.domain.invoice_lines import PartUsage, fee_lines, invoice_total, usage_lines
from invoicing_svc.domain.model import Plan, Subscription, SubscriptionStatus
from invoicing_svc.domain.plans import PlanTerms, validate_terms
from pricing.charges import UsageCharge
from service_kit.errors import FailedPrecondition, InvalidArgument


@dataclass(frozen=True)
class NewPrices:
    amount: Decimal | None
    charges: tuple[UsageCharge, ...]


def next_version(plan: Plan, prices: NewPrices, *, plan_id: str, now: datetime) -> Plan:
    """The next version of the latest version `plan`, with `prices` (valid for its type)."""
    if plan.superseded_by:
        raise FailedPrecondition(
            f"plan {plan.id} has a newer version, {plan.superseded_by}: version it instead",
            field="plan_id",
        )
    if plan.prepaid_only:
        raise FailedPrecondition(
            "a prepaid-only plan has no versions (its subscriptions never change plans)",
            field="plan_id",
        )
    validate_terms(PlanTerms(plan.pricing_type, prices.amount, prices.charges, plan.interval_count))
    return replace(
        plan,
        id=plan_id,
        amount=prices.amount,
        charges=prices.charges,
        create_time=now,
        version=plan.version + 1,
        version_of=plan.family_id,
        superseded_by="",
    )


def validate_target(source: Plan, target: Plan) -> None:
    if target.family_id != source.family_id or target.id == source.id:
        raise InvalidArgument(
            f"plan {target.id} is not another version of plan {source.id}", field="to_plan_id"
        )


class MigrationOutcome(StrEnum):
    # Moved (or, in a dry run, would move) to the target at its next period.
    SCHEDULED = "SCHEDULED"
    # Left as it is: canceled, ending at its period's end, or paused.
    SKIPPED = "SKIPPED"


def migration_outcome(subscription: Subscription) -> tuple[MigrationOutcome, str]:
    """Whether a subscription of the source version moves, and why not when it does not."""
    if subscription.status is SubscriptionStatus.CANCELED:
        return MigrationOutcome.SKIPPED, "canceled"
    if subscription.status is SubscriptionStatus.PAUSED:
        return MigrationOutcome.SKIPPED, "paused: it resumes on its version"
    if subscription.cancel_at_period_end:
        return MigrationOutcome.SKIPPED, "ends at its period's end"
    return MigrationOutcome.SCHEDULED, ""


def next_invoice_estimate(
    subscription: Subscription, plan: Plan, usage: Mapping[str, Decimal]
) -> Decimal:
    """A period invoice of `plan` billed in arrears with `usage` (the current period's so far):
    the whole fixed fee and the usage priced, before discounts and credits."""
    start, end = subscription.current_period_start, subscription.current_period_end
    parts = [PartUsage(plan, plan, start, end, usage)]
    return invoice_total([*fee_lines(parts, start, end, end), *usage_lines(parts)])

"""What makes a plan valid, what it charges as a fixed fee, what of it may change, and the
auto-pay mandate the hosted checkout proposes for it."""

from dataclasses import dataclass, replace
from decimal import Decimal

from invoicing_svc.domain.entitlements import UsageLimit, validate_features, validate_limits
from invoicing_svc.domain.model import BillingInterval, Plan, PricingType
from pricing.charges import (
    EVERY_KEY,
    MAX_PRICE,
    PricingModel,
    UsageCharge,
    validate_charge,
)
from service_kit.decimals import parse_decimal, round_usdc
from service_kit.errors import InvalidArgument
from service_kit.identifiers import require_identifier

MAX_NAME = 200
MAX_INTERVAL_COUNT = 36
MAX_CHARGES = 50
# A usage ceiling is an amount of USDC: whole base units.
CEILING_PLACES = 6
DAY_SECONDS = 86_400
# The shortest each interval can be: a mandate period no longer than the shortest gap between two
# period closes holds at most one invoice, so each invoice finds the whole cap (a 31-day period
# would hold both the January and the February close).
_SHORTEST_DAYS = {
    BillingInterval.DAY: 1,
    BillingInterval.WEEK: 7,
    BillingInterval.MONTH: 28,
    BillingInterval.YEAR: 365,
}


def require_name(name: str, field: str) -> str:
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidArgument(f"{field} must be 1-{MAX_NAME} characters", field=field)
    return name


@dataclass(frozen=True)
class PlanTerms:
    """The priced part of a plan as submitted, before it is stored."""

    pricing_type: PricingType | None
    amount: Decimal | None
    charges: tuple[UsageCharge, ...]
    interval_count: int
    prepaid_only: bool = False


def validate_terms(terms: PlanTerms) -> None:
    """Amount and charges must fit the pricing type; every charge must be valid and its own key."""
    if terms.pricing_type is None:
        raise InvalidArgument("plan.pricing_type is required", field="plan.pricing_type")
    if not 1 <= terms.interval_count <= MAX_INTERVAL_COUNT:
        raise InvalidArgument(
            f"plan.interval_count must be 1-{MAX_INTERVAL_COUNT}", field="plan.interval_count"
        )
    if len(terms.charges) > MAX_CHARGES:
        raise InvalidArgument(f"at most {MAX_CHARGES} charges", field="plan.charges")
    seen: set[str] = set()
    for index, charge in enumerate(terms.charges):
        field = f"plan.charges[{index}]"
        require_identifier(charge.event_key, f"{field}.event_key")
        if charge.event_key in seen:
            raise InvalidArgument(
                f"{field}.event_key repeats {charge.event_key}", field=f"{field}.event_key"
            )
        seen.add(charge.event_key)
        validate_charge(charge, field)
    amount, charges = terms.amount, terms.charges
    match terms.pricing_type:
        case PricingType.FIXED_RECURRING:
            if amount is None or amount == 0:
                raise InvalidArgument(
                    "a FIXED_RECURRING plan needs amount > 0", field="plan.amount"
                )
            if charges:
                raise InvalidArgument(
                    "a FIXED_RECURRING plan has no usage charges", field="plan.charges"
                )
        case PricingType.USAGE_BASED:
            if (amount is None or amount == 0) == (not charges):
                raise InvalidArgument(
                    "a USAGE_BASED plan has either amount (the unit price) or charges",
                    field="plan.amount",
                )
        case PricingType.HYBRID:
            if amount is None:
                raise InvalidArgument(
                    "a HYBRID plan needs amount (its base fee)", field="plan.amount"
                )
            if not charges:
                raise InvalidArgument("a HYBRID plan needs usage charges", field="plan.charges")
    if terms.prepaid_only and terms.pricing_type is not PricingType.USAGE_BASED:
        raise InvalidArgument(
            "a prepaid-only plan is USAGE_BASED: the credits pay for usage, never a fixed fee",
            field="plan.prepaid_only",
        )


def validate_entitlements(features: tuple[str, ...], limits: tuple[UsageLimit, ...]) -> None:
    validate_features(features)
    validate_limits(limits)


@dataclass(frozen=True)
class PlanChange:
    """What UpdatePlan changes; None leaves a field as it is. Prices never change."""

    usage_ceiling: Decimal | None = None
    features: tuple[str, ...] | None = None
    limits: tuple[UsageLimit, ...] | None = None


def changed_plan(plan: Plan, change: PlanChange) -> Plan:
    """The plan with the change applied; InvalidArgument when a changed field is not valid."""
    features = plan.features if change.features is None else change.features
    limits = plan.limits if change.limits is None else change.limits
    validate_entitlements(features, limits)
    ceiling = plan.usage_ceiling if change.usage_ceiling is None else change.usage_ceiling
    return replace(plan, usage_ceiling=ceiling, features=features, limits=limits)


def entitlements_changed(before: Plan, after: Plan) -> bool:
    """Whether the plan's subscriptions must tell metering (which enforces entitlements)."""
    return (before.features, before.limits) != (after.features, after.limits)


def fixed_fee(plan: Plan) -> Decimal:
    """The recurring fee per period: the amount of FIXED_RECURRING and HYBRID plans."""
    if plan.pricing_type is PricingType.USAGE_BASED or plan.amount is None:
        return Decimal(0)
    return plan.amount


def usage_charges(plan: Plan) -> tuple[UsageCharge, ...]:
    """How the plan prices usage: its charges, or in Retempo's simple form (a USAGE_BASED plan
    with an amount and no charges) one PER_UNIT charge on the sum of every key."""
    simple = plan.pricing_type is PricingType.USAGE_BASED and not plan.charges
    if simple and plan.amount is not None:
        return (UsageCharge(EVERY_KEY, PricingModel.PER_UNIT, unit_price=plan.amount),)
    return plan.charges


def parse_usage_ceiling(text: str, field: str) -> Decimal:
    """A usage ceiling: USDC >= 0 with at most 6 fractional digits; "" is 0."""
    if not text:
        return Decimal(0)
    return parse_decimal(text, field=field, max_places=CEILING_PLACES, max_value=MAX_PRICE)


def auto_pay_cap(plan: Plan) -> Decimal:
    """The cap per period of the mandate the checkout proposes: the fixed fee as an invoice bills
    it (rounded once to 6 decimals) plus the usage ceiling, so a period's invoice whose usage
    stays within the ceiling fits."""
    return round_usdc(fixed_fee(plan)) + plan.usage_ceiling


def auto_pay_period_seconds(plan: Plan) -> int:
    """The proposed mandate's period: the shortest the plan's billing period can be."""
    return _SHORTEST_DAYS[plan.billing_interval] * plan.interval_count * DAY_SECONDS

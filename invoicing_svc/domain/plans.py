"""What makes a plan valid, what it charges as a fixed fee, and the auto-pay mandate the hosted
checkout proposes for it."""

from dataclasses import dataclass
from decimal import Decimal

from invoicing_svc.domain.model import BillingInterval, Plan, PricingType
from invoicing_svc.domain.pricing import MAX_PRICE, PLACES, UsageCharge, validate_charge
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


def parse_price(text: str, field: str) -> Decimal:
    return parse_decimal(text, field=field, max_places=PLACES, max_value=MAX_PRICE)


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


def fixed_fee(plan: Plan) -> Decimal:
    """The recurring fee per period: the amount of FIXED_RECURRING and HYBRID plans."""
    if plan.pricing_type is PricingType.USAGE_BASED or plan.amount is None:
        return Decimal(0)
    return plan.amount


def simple_unit_price(plan: Plan) -> Decimal | None:
    """Retempo's simple form: a USAGE_BASED plan whose amount prices all metered quantity."""
    if plan.pricing_type is PricingType.USAGE_BASED and not plan.charges:
        return plan.amount
    return None


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

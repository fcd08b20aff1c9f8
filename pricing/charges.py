"""Pricing of a usage charge (PER_UNIT, PACKAGE, GRADUATED, VOLUME): exact, then rounded once.

Invoicing prices invoices with it, and metering the usage a prepaid-only plan's credits pay for,
so the two agree to the base unit."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, localcontext
from enum import StrEnum
from fractions import Fraction

from service_kit.decimals import MAX_AMOUNT, parse_decimal, round_usdc
from service_kit.errors import InvalidArgument

PLACES = 12
# A price is money: a unit, package, flat fee or plan amount at or above the bound of money
# could never be invoiced.
MAX_PRICE = MAX_AMOUNT
# Metering's bound on usage quantities: a tier bound or free quantity above it is never reached.
MAX_QUANTITY = Decimal(10) ** 15
MAX_TIERS = 50
ZERO = Decimal(0)
# A charge on this key prices the sum of every key's usage (Retempo's simple unit price).
EVERY_KEY = ""
# A period's aggregate is a sum of events, so it may pass metering's per-event bound (10^18
# events of 10^15 units make 46 digits with the fraction). Up to 70 digits of it times a 27-digit
# price, summed over 50 tiers, fit in 100: amounts stay exact however far past the bound of
# money they go (such a period is held, never billed). Trapping Inexact makes anything larger
# fail instead of rounding silently.
EXACT = Context(prec=100)
EXACT.traps[Inexact] = True


class PricingModel(StrEnum):
    PER_UNIT = "PER_UNIT"
    PACKAGE = "PACKAGE"
    GRADUATED = "GRADUATED"
    VOLUME = "VOLUME"


@dataclass(frozen=True)
class Tier:
    """`up_to` is the inclusive upper bound in billable units; None (last tier only) = unbounded."""

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = ZERO


@dataclass(frozen=True)
class UsageCharge:
    """How the usage of one event key is priced. `unit_price` is per unit (PER_UNIT) or per
    package (PACKAGE); tiered models price through `tiers`. `included_quantity` is free."""

    event_key: str
    model: PricingModel
    unit_price: Decimal = ZERO
    package_size: Decimal = ZERO
    tiers: tuple[Tier, ...] = ()
    included_quantity: Decimal = ZERO


def parse_price(text: str, field: str) -> Decimal:
    """A price (unit, package, flat fee, plan amount): a decimal string >= 0 with at most 12
    fractional digits, below the bound of money; empty is 0."""
    return parse_decimal(text or "0", field=field, max_places=PLACES, max_value=MAX_PRICE)


def parse_quantity(text: str, field: str) -> Decimal:
    """A quantity of a charge (tier bound, package size, included): like a price, below 10^15."""
    return parse_decimal(text or "0", field=field, max_places=PLACES, max_value=MAX_QUANTITY)


def _check_number(value: Decimal, field: str, *, bound: Decimal) -> None:
    if not value.is_finite():
        raise InvalidArgument(f"{field} must be a finite number", field=field)
    if value < 0:
        raise InvalidArgument(f"{field} must be >= 0", field=field)
    if value >= bound:
        raise InvalidArgument(f"{field} must be below {bound}", field=field)
    if (Fraction(value) * 10**PLACES).denominator != 1:
        raise InvalidArgument(f"{field} has more than {PLACES} fractional digits", field=field)


def _validate_tiers(tiers: tuple[Tier, ...], field: str) -> None:
    if not tiers:
        raise InvalidArgument(f"{field} must hold at least one tier", field=field)
    if len(tiers) > MAX_TIERS:
        raise InvalidArgument(f"{field} holds more than {MAX_TIERS} tiers", field=field)
    lower = ZERO
    for index, tier in enumerate(tiers):
        at = f"{field}[{index}]"
        _check_number(tier.unit_price, f"{at}.unit_price", bound=MAX_PRICE)
        _check_number(tier.flat_fee, f"{at}.flat_fee", bound=MAX_PRICE)
        last = index == len(tiers) - 1
        if tier.up_to is None:
            if not last:
                raise InvalidArgument(
                    f"{at}.up_to is required: only the last tier is unbounded", field=f"{at}.up_to"
                )
            continue
        if last:
            raise InvalidArgument(
                f"{at}.up_to must be unset: the last tier is unbounded", field=f"{at}.up_to"
            )
        _check_number(tier.up_to, f"{at}.up_to", bound=MAX_QUANTITY)
        if tier.up_to <= lower:
            raise InvalidArgument(f"{at}.up_to must be greater than {lower}", field=f"{at}.up_to")
        lower = tier.up_to


def validate_charge(charge: UsageCharge, field: str) -> None:
    """Raises InvalidArgument naming `{field}.<attribute>` unless the charge can be priced."""
    _check_number(charge.unit_price, f"{field}.unit_price", bound=MAX_PRICE)
    _check_number(charge.package_size, f"{field}.package_size", bound=MAX_QUANTITY)
    _check_number(charge.included_quantity, f"{field}.included_quantity", bound=MAX_QUANTITY)
    if charge.model in (PricingModel.GRADUATED, PricingModel.VOLUME):
        if charge.unit_price != 0:
            raise InvalidArgument(
                f"{field}.unit_price must be unset: {charge.model} prices come from the tiers",
                field=f"{field}.unit_price",
            )
        _validate_tiers(charge.tiers, f"{field}.tiers")
    elif charge.tiers:
        raise InvalidArgument(
            f"{field}.tiers must be empty: only GRADUATED and VOLUME charges have tiers",
            field=f"{field}.tiers",
        )
    if charge.model is PricingModel.PACKAGE and charge.package_size == 0:
        raise InvalidArgument(f"{field}.package_size must be > 0", field=f"{field}.package_size")
    if charge.model is not PricingModel.PACKAGE and charge.package_size != 0:
        raise InvalidArgument(
            f"{field}.package_size must be unset: it applies to PACKAGE charges only",
            field=f"{field}.package_size",
        )


def billable_quantity(charge: UsageCharge, quantity: Decimal) -> Decimal:
    """The quantity left to price once the included (free) quantity is used up."""
    with localcontext(EXACT):
        return max(ZERO, quantity - charge.included_quantity)


def _graduated(tiers: tuple[Tier, ...], billable: Decimal) -> Decimal:
    amount = ZERO
    lower = ZERO
    for tier in tiers:
        if billable <= lower:
            break
        upper = billable if tier.up_to is None else min(billable, tier.up_to)
        amount += (upper - lower) * tier.unit_price + tier.flat_fee
        lower = upper
    return amount


def _volume(tiers: tuple[Tier, ...], billable: Decimal) -> Decimal:
    if billable == 0:
        return ZERO
    tier = next(t for t in tiers if t.up_to is None or billable <= t.up_to)
    return billable * tier.unit_price + tier.flat_fee


def charge_amount(charge: UsageCharge, quantity: Decimal) -> Decimal:
    """The exact, unrounded amount for `quantity` units. The charge must pass validate_charge."""
    with localcontext(EXACT):
        billable = billable_quantity(charge, quantity)
        match charge.model:
            case PricingModel.PER_UNIT:
                return billable * charge.unit_price
            case PricingModel.PACKAGE:
                packages, partial = divmod(billable, charge.package_size)
                return (packages + (1 if partial else 0)) * charge.unit_price
            case PricingModel.GRADUATED:
                return _graduated(charge.tiers, billable)
            case PricingModel.VOLUME:
                return _volume(charge.tiers, billable)


def line_amount(charge: UsageCharge, quantity: Decimal) -> Decimal:
    """The invoice line amount: the exact amount rounded once to 6 decimals, half to even."""
    amount = charge_amount(charge, quantity)
    # An amount past the bound of money has more digits than the default 28-digit precision.
    with localcontext(prec=EXACT.prec):
        return round_usdc(amount)


def priced_quantity(charge: UsageCharge, usage: Mapping[str, Decimal]) -> Decimal:
    """What the charge prices of a period's usage (each event key's aggregate)."""
    if charge.event_key == EVERY_KEY:
        with localcontext(EXACT):
            return sum(usage.values(), ZERO)
    return usage.get(charge.event_key, ZERO)


def usage_cost(charges: Sequence[UsageCharge], usage: Mapping[str, Decimal]) -> Decimal:
    """What a period's usage costs: the sum of its charges' line amounts, each rounded once."""
    amounts = [line_amount(charge, priced_quantity(charge, usage)) for charge in charges]
    with localcontext(EXACT):
        return sum(amounts, round_usdc(ZERO))

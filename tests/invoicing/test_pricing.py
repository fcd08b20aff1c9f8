"""Usage pricing (pure): worked examples, validation, properties against a Fraction reference."""

import math
from decimal import Decimal, Inexact
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing.charges import (
    PricingModel,
    Tier,
    UsageCharge,
    billable_quantity,
    charge_amount,
    line_amount,
    validate_charge,
)
from service_kit.errors import InvalidArgument

D = Decimal
PER_UNIT = PricingModel.PER_UNIT
PACKAGE = PricingModel.PACKAGE
GRADUATED = PricingModel.GRADUATED
VOLUME = PricingModel.VOLUME

TOKENS_PER_UNIT = UsageCharge("tokens", PER_UNIT, unit_price=D("0.000010"))
TOKENS_PER_1000 = UsageCharge("tokens", PACKAGE, unit_price=D("0.04"), package_size=D(1000))
# Seed 004: the first 10,000 calls are included, each further call costs 0.001.
CALLS_OVERAGE = UsageCharge(
    "api_calls", GRADUATED, tiers=(Tier(None, D("0.001")),), included_quantity=D(10_000)
)
THREE_TIERS = (Tier(D(1000), D("0.01")), Tier(D(5000), D("0.008")), Tier(None, D("0.005")))
WITH_FEES = (Tier(D(100), D("0.10"), flat_fee=D(5)), Tier(None, D("0.05"), flat_fee=D(20)))
PICO = UsageCharge("requests", PER_UNIT, unit_price=D("0.000000000001"))
HALF_MICRO = UsageCharge("requests", PER_UNIT, unit_price=D("0.0000005"))


def assert_line(charge: UsageCharge, quantity: str, exact: str, rounded: str) -> None:
    """Exact amount by value; the line amount by value and by its 6-decimal representation."""
    assert charge_amount(charge, D(quantity)) == D(exact)
    line = line_amount(charge, D(quantity))
    assert line == D(rounded)
    assert str(line) == rounded


# --- Worked examples ---------------------------------------------------------------------------


def test_per_unit_tokens() -> None:
    assert_line(TOKENS_PER_UNIT, "50000", "0.5", "0.500000")
    assert_line(TOKENS_PER_UNIT, "0", "0", "0.000000")
    assert_line(TOKENS_PER_UNIT, "5.25", "0.0000525", "0.000052")


@pytest.mark.parametrize(
    ("quantity", "exact", "rounded"),
    [
        ("0", "0", "0.000000"),
        ("1", "0.04", "0.040000"),
        ("0.5", "0.04", "0.040000"),
        ("1000", "0.04", "0.040000"),
        ("1000.000000000001", "0.08", "0.080000"),
        ("1001", "0.08", "0.080000"),
        ("2000", "0.08", "0.080000"),
        ("2500000", "100.00", "100.000000"),
    ],
)
def test_package_rounds_partial_packages_up(quantity: str, exact: str, rounded: str) -> None:
    assert_line(TOKENS_PER_1000, quantity, exact, rounded)


def test_package_after_included_quantity() -> None:
    charge = UsageCharge(
        "tokens", PACKAGE, unit_price=D("0.04"), package_size=D(1000), included_quantity=D(1000)
    )
    assert_line(charge, "1000", "0", "0.000000")
    assert_line(charge, "1001", "0.04", "0.040000")
    assert_line(charge, "2001", "0.08", "0.080000")


def test_fractional_package_size() -> None:
    charge = UsageCharge("storage", PACKAGE, unit_price=D("0.5"), package_size=D("0.25"))
    assert_line(charge, "5.25", "10.5", "10.500000")
    assert_line(charge, "5.250000000001", "11", "11.000000")


@pytest.mark.parametrize(
    ("quantity", "billable", "exact", "rounded"),
    [
        ("0", "0", "0", "0.000000"),
        ("9999", "0", "0", "0.000000"),
        ("10000", "0", "0", "0.000000"),
        ("10001", "1", "0.001", "0.001000"),
        ("12345", "2345", "2.345", "2.345000"),
    ],
)
def test_included_quantity_then_overage(
    quantity: str, billable: str, exact: str, rounded: str
) -> None:
    assert billable_quantity(CALLS_OVERAGE, D(quantity)) == D(billable)
    assert_line(CALLS_OVERAGE, quantity, exact, rounded)


@pytest.mark.parametrize(
    ("quantity", "graduated", "volume"),
    [
        ("0", "0", "0"),
        ("1", "0.01", "0.01"),
        ("1000", "10", "10"),  # 1000 x 0.01: the bound belongs to the first tier
        ("1000.5", "10.004", "8.004"),  # 10 + 0.5 x 0.008 | 1000.5 x 0.008
        ("5000", "42", "40"),  # 10 + 4000 x 0.008 | 5000 x 0.008
        ("5001", "42.005", "25.005"),  # 42 + 1 x 0.005 | 5001 x 0.005
        ("10000", "67", "50"),  # 42 + 5000 x 0.005 | 10000 x 0.005
    ],
)
def test_tiers_at_and_around_their_bounds(quantity: str, graduated: str, volume: str) -> None:
    graduated_charge = UsageCharge("tokens", GRADUATED, tiers=THREE_TIERS)
    volume_charge = UsageCharge("tokens", VOLUME, tiers=THREE_TIERS)
    assert_line(graduated_charge, quantity, graduated, f"{D(graduated):.6f}")
    assert_line(volume_charge, quantity, volume, f"{D(volume):.6f}")


@pytest.mark.parametrize(
    ("quantity", "graduated", "volume"),
    [
        ("0", "0", "0"),  # no billable unit: no flat fee either
        ("1", "5.10", "5.10"),
        ("100", "15", "15"),
        ("100.000000000001", "35.00000000000005", "25.00000000000005"),
        ("150", "37.5", "27.5"),  # 5 + 10 + 20 + 50 x 0.05 | 20 + 150 x 0.05
    ],
)
def test_flat_fees_once_per_reached_tier(quantity: str, graduated: str, volume: str) -> None:
    graduated_charge = UsageCharge("seats", GRADUATED, tiers=WITH_FEES)
    volume_charge = UsageCharge("seats", VOLUME, tiers=WITH_FEES)
    assert charge_amount(graduated_charge, D(quantity)) == D(graduated)
    assert charge_amount(volume_charge, D(quantity)) == D(volume)
    assert line_amount(graduated_charge, D(quantity)) == round(D(graduated), 6)
    assert line_amount(volume_charge, D(quantity)) == round(D(volume), 6)


def test_tiers_apply_to_billable_units() -> None:
    charge = UsageCharge("tokens", GRADUATED, tiers=THREE_TIERS, included_quantity=D(500))
    assert_line(charge, "1500", "10", "10.000000")
    assert_line(charge, "1501", "10.008", "10.008000")


def test_volume_can_cost_less_for_more_usage() -> None:
    charge = UsageCharge("tokens", VOLUME, tiers=THREE_TIERS)
    assert charge_amount(charge, D(1000)) > charge_amount(charge, D(1001))


def test_twelve_digit_unit_price() -> None:
    assert_line(PICO, "999999", "0.000000999999", "0.000001")
    assert_line(PICO, "499999", "0.000000499999", "0.000000")
    assert_line(PICO, "1", "0.000000000001", "0.000000")
    assert_line(PICO, "0.000000000001", "1E-24", "0.000000")


@pytest.mark.parametrize(
    ("quantity", "exact", "rounded"),
    [
        ("1", "0.0000005", "0.000000"),  # half: to the even 0
        ("3", "0.0000015", "0.000002"),
        ("5", "0.0000025", "0.000002"),  # half: down to even
        ("7", "0.0000035", "0.000004"),  # half: up to even
        ("5.00000000002", "0.00000250000000001", "0.000003"),  # just above half
        ("4.99999999998", "0.00000249999999999", "0.000002"),  # just below half
    ],
)
def test_rounded_once_half_to_even(quantity: str, exact: str, rounded: str) -> None:
    assert_line(HALF_MICRO, quantity, exact, rounded)


def test_largest_amounts_stay_exact() -> None:
    price = D("999999999999.999999999999")
    quantity = D("999999999999999.999999999999")
    charge = UsageCharge("bytes", PER_UNIT, unit_price=price)
    validate_charge(charge, "charge")
    assert Fraction(charge_amount(charge, quantity)) == Fraction(price) * Fraction(quantity)
    # 10^27 - 1000 - 1 + 10^-24
    assert str(line_amount(charge, quantity)) == "999999999999999999999998999.000000"


def test_a_period_aggregate_past_metering_s_bound_is_priced_exactly() -> None:
    """A sum of many events (10^21 units) at a 27-digit price: exact, for the period's hold to
    name (invoicing_svc/domain/invoices.py), where 60 digits raised Inexact."""
    charge = UsageCharge("t", PER_UNIT, unit_price=D("999999999999999.999999999999"))
    quantity = D("1000000000000000000000.000000000001")
    assert str(line_amount(charge, quantity)) == "999999999999999999999999999000001000.000000"


def test_quantities_beyond_the_exact_precision_fail_loudly() -> None:
    with pytest.raises(Inexact):
        charge_amount(PICO, D("1" * 90 + ".000000000001"))


# --- Validation --------------------------------------------------------------------------------


def tiers(*bounds: str | None, price: str = "0.01") -> tuple[Tier, ...]:
    return tuple(Tier(None if b is None else D(b), D(price)) for b in bounds)


VALID = [
    TOKENS_PER_UNIT,
    TOKENS_PER_1000,
    CALLS_OVERAGE,
    UsageCharge("t", GRADUATED, tiers=THREE_TIERS),
    UsageCharge("t", VOLUME, tiers=WITH_FEES),
    UsageCharge("t", PER_UNIT, unit_price=D("999999999999.999999999999")),
    UsageCharge("t", PER_UNIT, included_quantity=D("999999999999999.999999999999")),
    UsageCharge("t", PACKAGE, unit_price=D(0), package_size=D("0.000000000001")),
    UsageCharge("t", VOLUME, tiers=tiers(*[str(n) for n in range(1, 50)], None)),
    UsageCharge(
        "t", GRADUATED, tiers=tiers("0.000000000001", "999999999999999.999999999999", None)
    ),
]


@pytest.mark.parametrize("charge", VALID)
def test_valid_charges_pass(charge: UsageCharge) -> None:
    validate_charge(charge, "usage_charges[0]")


@pytest.mark.parametrize(
    ("charge", "field"),
    [
        # Negative amounts and quantities.
        (UsageCharge("t", PER_UNIT, unit_price=D("-0.01")), "unit_price"),
        (UsageCharge("t", PACKAGE, unit_price=D(1), package_size=D(-1)), "package_size"),
        (UsageCharge("t", PER_UNIT, included_quantity=D(-1)), "included_quantity"),
        (UsageCharge("t", GRADUATED, tiers=tiers("10", None, price="-1")), "tiers[0].unit_price"),
        (
            UsageCharge("t", VOLUME, tiers=(Tier(D(10), D(1)), Tier(None, D(1), D("-5")))),
            "tiers[1].flat_fee",
        ),
        # Not finite.
        (UsageCharge("t", PER_UNIT, unit_price=D("NaN")), "unit_price"),
        (UsageCharge("t", PER_UNIT, included_quantity=D("Infinity")), "included_quantity"),
        # More than 12 fractional digits.
        (UsageCharge("t", PER_UNIT, unit_price=D("0.0000000000001")), "unit_price"),
        (UsageCharge("t", PACKAGE, package_size=D("1.0000000000001")), "package_size"),
        (UsageCharge("t", PER_UNIT, included_quantity=D("1E-13")), "included_quantity"),
        (
            UsageCharge("t", GRADUATED, tiers=tiers("10", None, price="0.0000000000005")),
            "tiers[0].unit_price",
        ),
        (
            UsageCharge("t", VOLUME, tiers=(Tier(None, D(1), D("0.0000000000001")),)),
            "tiers[0].flat_fee",
        ),
        (UsageCharge("t", GRADUATED, tiers=tiers("10.0000000000001", None)), "tiers[0].up_to"),
        # Too large.
        (UsageCharge("t", PER_UNIT, unit_price=D(10) ** 15), "unit_price"),
        (UsageCharge("t", VOLUME, tiers=tiers("1E12", None, price="1E15")), "tiers[0].unit_price"),
        (UsageCharge("t", VOLUME, tiers=(Tier(None, D(1), D("1E15")),)), "tiers[0].flat_fee"),
        (UsageCharge("t", PACKAGE, unit_price=D(1), package_size=D("1E15")), "package_size"),
        (UsageCharge("t", PER_UNIT, included_quantity=D("1E15")), "included_quantity"),
        (UsageCharge("t", GRADUATED, tiers=tiers("1E15", None)), "tiers[0].up_to"),
        # PACKAGE needs a package size, and only PACKAGE has one.
        (UsageCharge("t", PACKAGE, unit_price=D("0.04")), "package_size"),
        (UsageCharge("t", PER_UNIT, unit_price=D(1), package_size=D(1000)), "package_size"),
        # Tiers only for GRADUATED and VOLUME, which take no unit price or package size.
        (UsageCharge("t", PER_UNIT, unit_price=D(1), tiers=tiers(None)), "tiers"),
        (
            UsageCharge("t", PACKAGE, unit_price=D(1), package_size=D(10), tiers=tiers(None)),
            "tiers",
        ),
        (UsageCharge("t", GRADUATED), "tiers"),
        (UsageCharge("t", VOLUME, included_quantity=D(10)), "tiers"),
        (UsageCharge("t", GRADUATED, unit_price=D(1), tiers=tiers(None)), "unit_price"),
        (UsageCharge("t", VOLUME, package_size=D(1000), tiers=tiers(None)), "package_size"),
        # Bounds positive and strictly increasing; only the last tier, and always it, unbounded.
        (UsageCharge("t", GRADUATED, tiers=tiers("0", None)), "tiers[0].up_to"),
        (UsageCharge("t", VOLUME, tiers=tiers("-1", None)), "tiers[0].up_to"),
        (UsageCharge("t", GRADUATED, tiers=tiers("10", "10", None)), "tiers[1].up_to"),
        (UsageCharge("t", VOLUME, tiers=tiers("10", "20", "15", None)), "tiers[2].up_to"),
        (UsageCharge("t", GRADUATED, tiers=tiers(None, None)), "tiers[0].up_to"),
        (UsageCharge("t", GRADUATED, tiers=tiers("10", None, "20", None)), "tiers[1].up_to"),
        (UsageCharge("t", VOLUME, tiers=tiers("10")), "tiers[0].up_to"),
        (UsageCharge("t", GRADUATED, tiers=tiers("10", "20")), "tiers[1].up_to"),
        # At most 50 tiers.
        (UsageCharge("t", VOLUME, tiers=tiers(*[str(n) for n in range(1, 51)], None)), "tiers"),
    ],
)
def test_invalid_charges_name_the_field(charge: UsageCharge, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_charge(charge, "usage_charges[2]")
    assert caught.value.field == f"usage_charges[2].{field}"
    assert caught.value.message.startswith(f"usage_charges[2].{field} ")


# --- Properties against an independent reference -----------------------------------------------


def reference_amount(charge: UsageCharge, quantity: Decimal) -> Fraction:
    """Straightforward pricing in Fractions, written independently of the module under test."""
    billable = max(Fraction(0), Fraction(quantity) - Fraction(charge.included_quantity))
    if charge.model is PER_UNIT:
        return billable * Fraction(charge.unit_price)
    if charge.model is PACKAGE:
        # Inputs have at most 12 fractional digits: in units of 1e-12 both are integers.
        units = billable * 10**12
        size = Fraction(charge.package_size) * 10**12
        assert units.denominator == 1 and size.denominator == 1
        packages = (units.numerator + size.numerator - 1) // size.numerator
        return packages * Fraction(charge.unit_price)
    if charge.model is GRADUATED:
        total, remaining, lower = Fraction(0), billable, Fraction(0)
        for tier in charge.tiers:
            if remaining == 0:
                break
            if tier.up_to is None:
                taken = remaining
            else:
                taken = min(remaining, Fraction(tier.up_to) - lower)
                lower = Fraction(tier.up_to)
            total += taken * Fraction(tier.unit_price) + Fraction(tier.flat_fee)
            remaining -= taken
        return total
    if billable == 0:
        return Fraction(0)
    for tier in charge.tiers:
        if tier.up_to is None or billable <= Fraction(tier.up_to):
            return billable * Fraction(tier.unit_price) + Fraction(tier.flat_fee)
    raise AssertionError("the last tier is unbounded")


def reference_round(amount: Fraction) -> Fraction:
    """Half to even at 6 decimals."""
    scaled = amount * 10**6
    whole = math.floor(scaled)
    rest = scaled - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    return Fraction(whole, 10**6)


def decimals(max_coefficient: int, max_places: int = 12) -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda coefficient, places: Decimal(coefficient).scaleb(-places),
        st.integers(0, max_coefficient),
        st.integers(0, max_places),
    )


PICO_UNIT = D("1E-12")
# Everyday prices; odd multiples of half a micro-USDC, which with an odd whole quantity land
# exactly on a rounding tie; and any price the validation allows (< 10^12, 12 fractional digits).
prices = st.one_of(
    decimals(10**6),
    st.integers(0, 10**6).map(lambda n: (2 * n + 1) * D("0.0000005")),
    st.integers(0, 10**24 - 1).map(lambda n: Decimal(n).scaleb(-12)),
)
fees = st.one_of(st.just(D(0)), decimals(10**6, max_places=6))
quantities = st.one_of(decimals(10**12), st.integers(0, 10**6).map(Decimal))


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.lists(st.integers(1, 10**6), max_size=5, unique=True)))
    places = draw(st.sampled_from([0, 2]))
    ups: list[Decimal | None] = [Decimal(b).scaleb(-places) for b in bounds]
    return tuple(Tier(up, draw(prices), draw(fees)) for up in [*ups, None])


@st.composite
def charges(draw: st.DrawFn, models: tuple[PricingModel, ...] = tuple(PricingModel)) -> UsageCharge:
    model = draw(st.sampled_from(models))
    included = draw(st.one_of(st.just(D(0)), decimals(10**6, max_places=3), quantities))
    if model is PER_UNIT:
        return UsageCharge("e", model, unit_price=draw(prices), included_quantity=included)
    if model is PACKAGE:
        size = draw(decimals(10**9).filter(lambda d: d > 0))
        return UsageCharge(
            "e", model, unit_price=draw(prices), package_size=size, included_quantity=included
        )
    return UsageCharge("e", model, tiers=draw(tier_lists()), included_quantity=included)


@st.composite
def usage(draw: st.DrawFn, charge: UsageCharge) -> Decimal:
    """Any quantity, or one that puts the billable quantity on (or 1e-12 around) an edge."""
    edges = [charge.included_quantity]
    edges += [charge.included_quantity + t.up_to for t in charge.tiers if t.up_to is not None]
    if charge.model is PACKAGE:
        edges += [charge.included_quantity + k * charge.package_size for k in (1, 2, 7)]
    near = st.sampled_from(edges).flatmap(
        lambda edge: st.sampled_from([edge, edge + PICO_UNIT, max(D(0), edge - PICO_UNIT)])
    )
    return draw(st.one_of(quantities, near))


@pytest.mark.parametrize("model", list(PricingModel))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_amounts_match_the_reference(model: PricingModel, data: st.DataObject) -> None:
    charge = data.draw(charges((model,)), label="charge")
    quantity = data.draw(usage(charge), label="quantity")
    validate_charge(charge, "charge")
    expected = reference_amount(charge, quantity)
    assert Fraction(charge_amount(charge, quantity)) == expected
    line = line_amount(charge, quantity)
    assert Fraction(line) == reference_round(expected)
    assert line.as_tuple().exponent == -6


@pytest.mark.parametrize("model", [PER_UNIT, PACKAGE, GRADUATED])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_more_usage_never_costs_less(model: PricingModel, data: st.DataObject) -> None:
    charge = data.draw(charges((model,)), label="charge")
    less, more = sorted([data.draw(usage(charge)), data.draw(usage(charge))])
    assert charge_amount(charge, less) <= charge_amount(charge, more)
    assert line_amount(charge, less) <= line_amount(charge, more)

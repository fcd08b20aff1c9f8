"""Exact decimal parsing and USDC rounding (pure)."""

from decimal import Decimal

import pytest

from service_kit.decimals import format_decimal, parse_decimal, round_usdc
from service_kit.errors import InvalidArgument

BOUND = Decimal(10) ** 15


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.25", Decimal("5.25")),
        ("0", Decimal(0)),
        ("0.000000000001", Decimal("1E-12")),
        ("1e3", Decimal(1000)),
        ("999999999999999.999999999999", Decimal("999999999999999.999999999999")),
    ],
)
def test_valid_decimals_parse_exactly(text: str, expected: Decimal) -> None:
    assert parse_decimal(text, field="q", max_places=12, max_value=BOUND) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "1e15",
        "0.0000000000001",
        "1,5",
        "0x10",
        "1" * 65,
    ],
)
def test_invalid_decimals_name_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_decimal(text, field="quantity", max_places=12, max_value=BOUND)
    assert caught.value.field == "quantity"


def test_zero_can_be_refused() -> None:
    with pytest.raises(InvalidArgument, match="> 0"):
        parse_decimal("0", field="amount", max_places=6, max_value=BOUND, allow_zero=False)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("5.250000000000"), "5.25"),
        (Decimal("0E-12"), "0"),
        (Decimal("1E+3"), "1000"),
        (Decimal("0.000001"), "0.000001"),
    ],
)
def test_decimals_format_plainly(value: Decimal, text: str) -> None:
    assert format_decimal(value) == text


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        ("0.0000005", "0.000000"),
        ("0.0000015", "0.000002"),
        ("0.0000025", "0.000002"),
        ("0.50000049", "0.500000"),
    ],
)
def test_usdc_rounding_is_half_even_to_six_places(value: str, rounded: str) -> None:
    assert str(round_usdc(Decimal(value))) == rounded

"""Exact decimal parsing for quantities and money. Floats never touch an amount."""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction

from service_kit.errors import InvalidArgument

USDC_QUANTUM = Decimal("0.000001")
# The one bound of money, exclusive, in USDC: every price, line, invoice, ledger entry and
# payment stays below it (10^21 base units on chain; NUMERIC(30, 6) columns hold 10^24).
MAX_AMOUNT = Decimal(10) ** 15
# The longest decimal string a service parses.
MAX_DECIMAL_TEXT = 64


def parse_decimal(
    text: str,
    *,
    field: str,
    max_places: int,
    max_value: Decimal,
    allow_zero: bool = True,
) -> Decimal:
    """Parses a decimal string exactly, refusing NaN, infinities, negatives and excess precision.

    `max_value` is exclusive. Exponent notation is accepted ("1e3") as long as the value fits.
    """
    if not text or len(text) > MAX_DECIMAL_TEXT:
        raise InvalidArgument(
            f"{field} must be a decimal string of 1-{MAX_DECIMAL_TEXT} characters", field=field
        )
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidArgument(
            f"{field} is not a decimal number: {text[:64]!r}", field=field
        ) from None
    if not value.is_finite():
        raise InvalidArgument(f"{field} must be a finite number", field=field)
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidArgument(f"{field} must be {bound}", field=field)
    if value >= max_value:
        raise InvalidArgument(f"{field} must be below {max_value}", field=field)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > max_places:
        raise InvalidArgument(f"{field} has more than {max_places} fractional digits", field=field)
    return value


def format_decimal(value: Decimal) -> str:
    """Plain notation without exponent or trailing zeros: Decimal("5.250000000000") -> "5.25"."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def round_usdc(value: Decimal) -> Decimal:
    """Rounds once to the USDC base unit (6 decimals) with ROUND_HALF_EVEN."""
    return value.quantize(USDC_QUANTUM, rounding=ROUND_HALF_EVEN)


def round_usdc_fraction(value: Fraction) -> Decimal:
    """Rounds an exact rational (e.g. a fee x 17/30 days) once to 6 decimals, ROUND_HALF_EVEN."""
    scaled = value * 1_000_000
    quotient, remainder = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * remainder
    if twice > scaled.denominator or (twice == scaled.denominator and quotient % 2 == 1):
        quotient += 1
    return Decimal(quotient).scaleb(-6).quantize(USDC_QUANTUM)

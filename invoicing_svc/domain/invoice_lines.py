"""The lines of a period's invoice: the fixed fee (pro-rated when the period was cut short) and
one line per usage charge, each exact and then rounded once to the USDC base unit."""

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction

from invoicing_svc.domain.model import InvoiceLine, Plan
from invoicing_svc.domain.plans import fixed_fee, usage_charges
from pricing.charges import EVERY_KEY, EXACT, line_amount, priced_quantity
from service_kit.decimals import format_decimal, round_usdc, round_usdc_fraction

DAY = timedelta(days=1)


def active_share(period_start: datetime, period_end: datetime, ended_at: datetime) -> Fraction:
    """The part of a period a subscription was active, in days: every started day counts."""
    if ended_at >= period_end:
        return Fraction(1)
    period_days = math.ceil((period_end - period_start) / DAY)
    active_days = math.ceil((ended_at - period_start) / DAY)
    return Fraction(active_days, period_days)


def period_lines(
    plan: Plan, usage: Mapping[str, Decimal], fee_share: Fraction
) -> list[InvoiceLine]:
    """`usage` maps each event key to its aggregate for the period (per its meter); `fee_share`
    is the part of the fixed fee owed: 1, a pro-rated part, or 0 when it was paid up front."""
    lines: list[InvoiceLine] = []
    fee = fixed_fee(plan)
    if fee > 0 and fee_share > 0:
        description = f"{plan.name}: fixed fee"
        if fee_share != 1:
            description += f" x {fee_share.numerator}/{fee_share.denominator} of the period"
        amount = round_usdc_fraction(Fraction(fee) * fee_share)
        lines.append(InvoiceLine(description, "", Decimal(1), amount))
    for charge in usage_charges(plan):
        quantity = priced_quantity(charge, usage)
        if charge.event_key == EVERY_KEY:
            description = f"Usage: {format_decimal(quantity)} x {format_decimal(charge.unit_price)}"
        else:
            model = charge.model.value.lower()
            description = f"{charge.event_key}: {format_decimal(quantity)} ({model})"
        lines.append(
            InvoiceLine(description, charge.event_key, quantity, line_amount(charge, quantity))
        )
    return lines


def invoice_total(lines: list[InvoiceLine]) -> Decimal:
    """The sum of the rounded lines."""
    with localcontext(EXACT):
        return sum((line.amount for line in lines), round_usdc(Decimal(0)))


def usage_spend(plan: Plan, usage: Mapping[str, Decimal]) -> tuple[list[InvoiceLine], Decimal]:
    """What a period's usage has cost so far: its usage lines (no fixed fee) and their total."""
    lines = period_lines(plan, usage, Fraction(0))
    return lines, invoice_total(lines)

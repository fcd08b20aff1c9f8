"""The lines of a period's invoice: the fixed fee (by days when the period was cut short or its
plan changed) and one line per usage charge of each part of the period, each exact and then
rounded once to the USDC base unit."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from fractions import Fraction

from invoicing_svc.domain.model import InvoiceLine, Plan
from invoicing_svc.domain.plan_changes import elapsed_days, period_days
from invoicing_svc.domain.plans import fixed_fee, usage_charges
from pricing.charges import EVERY_KEY, EXACT, line_amount, priced_quantity
from service_kit.decimals import format_decimal, round_usdc, round_usdc_fraction


@dataclass(frozen=True)
class PartUsage:
    """One part [start, end) of a period under one plan (`plan_changes.period_parts`): `usage`
    maps each event key to its aggregate over the part, which `plan` prices; its time is charged
    at `fee_plan`'s fixed fee."""

    plan: Plan
    fee_plan: Plan
    start: datetime
    end: datetime
    usage: Mapping[str, Decimal]


def fee_lines(
    parts: Sequence[PartUsage], period_start: datetime, period_end: datetime, until: datetime
) -> list[InvoiceLine]:
    """The fixed fee owed for the period up to `until`: each fee plan's for the days of its
    parts (every started day counts, the day of a change the earlier plan's)."""
    days = period_days(period_start, period_end)
    owed: list[tuple[Plan, int]] = []
    for part in parts:
        start = elapsed_days(period_start, period_end, part.start)
        end = elapsed_days(period_start, period_end, min(part.end, until))
        if owed and owed[-1][0].id == part.fee_plan.id:
            owed[-1] = (part.fee_plan, owed[-1][1] + end - start)
        elif end > start:
            owed.append((part.fee_plan, end - start))
    lines = []
    for plan, owed_days in owed:
        fee, share = fixed_fee(plan), Fraction(owed_days, days)
        if fee <= 0 or share <= 0:
            continue
        description = f"{plan.name}: fixed fee"
        if share != 1:
            description += f" x {share.numerator}/{share.denominator} of the period"
        amount = round_usdc_fraction(Fraction(fee) * share)
        lines.append(InvoiceLine(description, "", Decimal(1), amount))
    return lines


def _label(part: PartUsage) -> str:
    return f"{part.plan.name}, {part.start:%Y-%m-%d %H:%M} to {part.end:%Y-%m-%d %H:%M} UTC: "


def usage_lines(parts: Sequence[PartUsage]) -> list[InvoiceLine]:
    """One line per usage charge of each part, priced by the part's plan on the part's usage
    alone (included quantities and tiers start again with each plan). With more than one part
    each line says which plan and time it is."""
    lines: list[InvoiceLine] = []
    for part in parts:
        label = _label(part) if len(parts) > 1 else ""
        for charge in usage_charges(part.plan):
            quantity = priced_quantity(charge, part.usage)
            if charge.event_key == EVERY_KEY:
                unit = format_decimal(charge.unit_price)
                description = f"Usage: {format_decimal(quantity)} x {unit}"
            else:
                model = charge.model.value.lower()
                description = f"{charge.event_key}: {format_decimal(quantity)} ({model})"
            amount = line_amount(charge, quantity)
            lines.append(InvoiceLine(label + description, charge.event_key, quantity, amount))
    return lines


def invoice_total(lines: Sequence[InvoiceLine]) -> Decimal:
    """The sum of the rounded lines."""
    with localcontext(EXACT):
        return sum((line.amount for line in lines), round_usdc(Decimal(0)))


def usage_spend(parts: Sequence[PartUsage]) -> tuple[list[InvoiceLine], Decimal]:
    """What a period's usage has cost so far: its usage lines (no fixed fee) and their total."""
    lines = usage_lines(parts)
    return lines, invoice_total(lines)

"""The invoice of a billing period, as a pure function of the subscription, the usage of each
part of the period with the plans that price it, and when the period ends: the period close only
loads and stores."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from invoicing_svc.domain import invoices as rules
from invoicing_svc.domain.credits import SubscriptionBalance
from invoicing_svc.domain.discounts import Coupon, discount_line, discountable
from invoicing_svc.domain.invoice_lines import (
    PartUsage,
    fee_lines,
    invoice_total,
    usage_lines,
    usage_spend,
)
from invoicing_svc.domain.model import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Subscription,
    SubscriptionStatus,
)
from invoicing_svc.domain.plan_changes import fee_up_front
from invoicing_svc.domain.trials import trial_lines

# Progressive billing: what interim invoices billed of a period, off its later invoices.
INTERIM_LINE = "Billed in interim invoices"
# A period whose credits (a downgrade's prorations) exceed its charges invoices zero; the rest
# is taken off the next period's invoice.
CARRIED_OUT_LINE = "Credit carried to the next period"
CARRIED_IN_LINE = "Credit carried from the previous period"
# A final invoice's credit beyond its charges: the platform pays nothing out.
UNUSED_CREDIT_LINE = "Credit left unused: the subscription ended"


def _less_interim(
    lines: tuple[InvoiceLine, ...], total: Decimal, billed: Decimal
) -> tuple[tuple[InvoiceLine, ...], Decimal]:
    """The lines and total less what interim invoices billed already, never below zero."""
    if billed <= 0 or total <= 0:
        return lines, total
    taken = min(billed, total)
    return (*lines, InvoiceLine(INTERIM_LINE, "", Decimal(1), -taken)), total - taken


def period_charges(
    subscription: Subscription, parts: Sequence[PartUsage], until: datetime
) -> tuple[tuple[InvoiceLine, ...], Decimal]:
    """The lines and total of the subscription's current period ending at `until`: the fixed
    fee by days up to `until` unless it was paid up front (or the period is a trial), each part's
    usage priced by its plan (taken off again in a free trial), and the prorations of plan
    changes."""
    start, end = subscription.current_period_start, subscription.current_period_end
    used = usage_lines(parts)
    if subscription.in_trial:
        lines = (*used, *trial_lines(parts[-1].plan, used), *subscription.pending_lines)
        return lines, invoice_total(lines)
    fees = [] if fee_up_front(subscription) else fee_lines(parts, start, end, until)
    lines = (*fees, *used, *subscription.pending_lines)
    return lines, invoice_total(lines)


def _carried(
    lines: tuple[InvoiceLine, ...], total: Decimal, *, final: bool
) -> tuple[tuple[InvoiceLine, ...], Decimal]:
    """A negative total (credits beyond the charges) is carried to the next period (or, on a
    final invoice, left unused): zero."""
    if total >= 0:
        return lines, total
    description = UNUSED_CREDIT_LINE if final else CARRIED_OUT_LINE
    return (*lines, InvoiceLine(description, "", Decimal(1), -total)), total - total


def _discounted(
    lines: tuple[InvoiceLine, ...], total: Decimal, coupon: Coupon | None
) -> tuple[tuple[InvoiceLine, ...], Decimal]:
    """The discount taken off the charges: every line but a credit carried in."""
    if coupon is None:
        return lines, total
    off = discount_line(coupon, discountable(lines, CARRIED_IN_LINE))
    return ((*lines, off), total + off.amount) if off else (lines, total)


def takes_discount(subscription: Subscription, parts: Sequence[PartUsage], until: datetime) -> bool:
    """Whether the period's invoice has charges a discount could be taken off."""
    lines, _ = period_charges(subscription, parts, until)
    return discountable(lines, CARRIED_IN_LINE) > 0


def carried_credit(invoice: Invoice, following: Subscription) -> Subscription:
    """The following period with the credit its invoice carried out, as a line of its own
    invoice."""
    carried = [line for line in invoice.lines if line.description == CARRIED_OUT_LINE]
    if not carried:
        return following
    line = InvoiceLine(CARRIED_IN_LINE, "", Decimal(1), -carried[0].amount)
    return replace(following, pending_lines=(*following.pending_lines, line))


def _issued(
    subscription: Subscription,
    lines: tuple[InvoiceLine, ...],
    total: Decimal,
    period_end: datetime,
    invoice_id: str,
    now: datetime,
    payment_terms: timedelta,
    *,
    interim: bool = False,
) -> Invoice:
    """An invoice of the subscription's current period up to `period_end`, finalized as it is
    made: OPEN, or PAID when nothing is owed (a zero invoice is paid as it is issued)."""
    # On a test clock the invoice lives in the subscription's time, like its period.
    issued = subscription.now(now)
    return Invoice(
        id=invoice_id,
        merchant_id=subscription.merchant_id,
        subscription_id=subscription.id,
        service_id=subscription.service_id,
        user_id=subscription.user_id,
        plan_id=subscription.plan_id,
        status=InvoiceStatus.OPEN if total > 0 else InvoiceStatus.PAID,
        period_start=subscription.current_period_start,
        period_end=period_end,
        amount=total,
        create_time=issued,
        lines=lines,
        finalize_time=issued,
        due_time=issued + payment_terms,
        paid_time=None if total > 0 else issued,
        interim=interim,
    )


def period_invoice(
    subscription: Subscription,
    parts: Sequence[PartUsage],
    *,
    until: datetime,
    invoice_id: str,
    now: datetime,
    payment_terms: timedelta,
    interim_billed: Decimal = Decimal(0),
    final: bool = False,
    discount: Coupon | None = None,
) -> Invoice:
    """The invoice of the subscription's current period, which ends at `until` (its end, or the
    cancellation time). The fixed fee is owed by days up to `until` unless it was paid up front;
    `parts` hold the usage the invoice bills of each part (`periods.billed_end`); what interim
    invoices billed of the period is taken off after the `discount` (discounts.py), and a credit
    beyond the charges is carried to the next period (left unused by the `final` invoice of a
    subscription that ends). Issued
    OPEN, or PAID when nothing is owed; held as a DRAFT when it prices at or beyond the bound of
    money."""
    charges = _discounted(*period_charges(subscription, parts, until), discount)
    lines, total = _carried(*_less_interim(*charges, interim_billed), final=final)
    invoice = _issued(subscription, lines, total, until, invoice_id, now, payment_terms)
    # Priced at or beyond the bound of money: held, never posted half-way.
    reason = rules.hold_reason(lines, total)
    return rules.hold(invoice, reason) if reason else invoice


def current_balance(
    subscription: Subscription,
    parts: Sequence[PartUsage],
    credit_balance: Decimal,
    now: datetime,
) -> SubscriptionBalance:
    """The subscriber's credits less what the current period has consumed: its invoice if no
    more usage came before its end (`parts`: the period's usage so far). A canceled or paused
    subscription has no current period, so nothing is consumed."""
    lines: tuple[InvoiceLine, ...] = ()
    consumed = Decimal("0.000000")
    if subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE):
        lines, consumed = period_charges(subscription, parts, subscription.current_period_end)
    return SubscriptionBalance(
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        credit_balance=credit_balance,
        consumed=consumed,
        lines=lines,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        as_of=subscription.now(now),
    )


def interim_invoice(
    subscription: Subscription,
    parts: Sequence[PartUsage],
    interim_billed: Decimal,
    *,
    invoice_id: str,
    now: datetime,
    payment_terms: timedelta,
) -> Invoice | None:
    """Progressive billing: an OPEN invoice of what the current period's usage has cost so far
    (no fixed fee: the period's own invoice bills it) less what earlier interim invoices of the
    period billed; None when that leaves nothing to bill."""
    spent_lines, spend = usage_spend(parts)
    lines, total = _less_interim(tuple(spent_lines), spend, interim_billed)
    if total <= 0 or rules.hold_reason(lines, total):
        return None
    until = subscription.now(now)
    return _issued(subscription, lines, total, until, invoice_id, now, payment_terms, interim=True)


def proration_invoice(
    subscription: Subscription,
    prorations: Sequence[InvoiceLine],
    *,
    invoice_id: str,
    now: datetime,
    payment_terms: timedelta,
) -> Invoice:
    """The prorations of a plan change made now, invoiced at once (ALWAYS_INVOICE): OPEN, and
    collected as any invoice is (through the mandate, or paid on its hosted page). It bills no
    period of its own: the period's invoice still bills the period."""
    lines = tuple(prorations)
    end = subscription.current_period_end
    issued = _issued(subscription, lines, invoice_total(lines), end, invoice_id, now, payment_terms)
    return replace(issued, period_start=None, period_end=None)

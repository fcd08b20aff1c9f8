"""The invoice of a billing period, as a pure function of the subscription, its plan, the usage
the invoice bills and when the period ends: the period close only loads and stores."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from invoicing_svc.domain import invoices as rules
from invoicing_svc.domain.credits import SubscriptionBalance
from invoicing_svc.domain.invoice_lines import (
    active_share,
    invoice_total,
    period_lines,
    usage_spend,
)
from invoicing_svc.domain.model import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Plan,
    Subscription,
    SubscriptionStatus,
)

# Progressive billing: what interim invoices billed of a period, off its later invoices.
INTERIM_LINE = "Billed in interim invoices"


def _less_interim(
    lines: tuple[InvoiceLine, ...], total: Decimal, billed: Decimal
) -> tuple[tuple[InvoiceLine, ...], Decimal]:
    """The lines and total less what interim invoices billed already, never below zero."""
    if billed <= 0:
        return lines, total
    taken = min(billed, total)
    return (*lines, InvoiceLine(INTERIM_LINE, "", Decimal(1), -taken)), total - taken


def period_charges(
    subscription: Subscription, plan: Plan, usage: Mapping[str, Decimal], until: datetime
) -> tuple[tuple[InvoiceLine, ...], Decimal]:
    """The lines and total of the subscription's current period ending at `until`: the usage
    priced, and the fixed fee pro-rated to `until` unless it was paid up front."""
    start, end = subscription.current_period_start, subscription.current_period_end
    prepaid = subscription.fee_prepaid_until is not None and subscription.fee_prepaid_until >= end
    share = Fraction(0) if prepaid else active_share(start, end, until)
    lines = tuple(period_lines(plan, usage, share))
    return lines, invoice_total(list(lines))


def _issued(
    subscription: Subscription,
    plan: Plan,
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
        plan_id=plan.id,
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
    plan: Plan,
    usage: Mapping[str, Decimal],
    *,
    until: datetime,
    invoice_id: str,
    now: datetime,
    payment_terms: timedelta,
    interim_billed: Decimal = Decimal(0),
) -> Invoice:
    """The invoice of the subscription's current period, which ends at `until` (its end, or the
    cancellation time). The fixed fee is pro-rated to `until` unless it was paid up front;
    `usage` maps each event key to what the invoice bills (`periods.billed_usage`); what
    interim invoices billed of the period is taken off. Issued OPEN, or PAID when nothing is
    owed; held as a DRAFT when it prices at or beyond the bound of money."""
    lines, total = _less_interim(*period_charges(subscription, plan, usage, until), interim_billed)
    invoice = _issued(subscription, plan, lines, total, until, invoice_id, now, payment_terms)
    # Priced at or beyond the bound of money: held, never posted half-way.
    reason = rules.hold_reason(lines, total)
    return rules.hold(invoice, reason) if reason else invoice


def current_balance(
    subscription: Subscription,
    plan: Plan,
    usage: Mapping[str, Decimal],
    credit_balance: Decimal,
    now: datetime,
) -> SubscriptionBalance:
    """The subscriber's credits less what the current period has consumed: its invoice if no
    more usage came before its end (`usage`: the period's so far). A canceled subscription has
    no current period, so nothing is consumed."""
    lines: tuple[InvoiceLine, ...] = ()
    consumed = Decimal("0.000000")
    if subscription.status is not SubscriptionStatus.CANCELED:
        lines, consumed = period_charges(subscription, plan, usage, subscription.current_period_end)
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
    plan: Plan,
    usage: Mapping[str, Decimal],
    interim_billed: Decimal,
    *,
    invoice_id: str,
    now: datetime,
    payment_terms: timedelta,
) -> Invoice | None:
    """Progressive billing: an OPEN invoice of what the current period's usage has cost so far
    (no fixed fee: the period's own invoice bills it) less what earlier interim invoices of the
    period billed; None when that leaves nothing to bill."""
    usage_lines, spend = usage_spend(plan, usage)
    lines, total = _less_interim(tuple(usage_lines), spend, interim_billed)
    if total <= 0 or rules.hold_reason(lines, total):
        return None
    until = subscription.now(now)
    return _issued(
        subscription, plan, lines, total, until, invoice_id, now, payment_terms, interim=True
    )

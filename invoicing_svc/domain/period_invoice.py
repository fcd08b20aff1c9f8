"""The invoice of a billing period, as a pure function of the subscription, its plan, the usage
the invoice bills and when the period ends: the period close only loads and stores."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from invoicing_svc.domain import invoices as rules
from invoicing_svc.domain.invoice_lines import active_share, invoice_total, period_lines
from invoicing_svc.domain.model import Invoice, InvoiceStatus, Plan, Subscription


def period_invoice(
    subscription: Subscription,
    plan: Plan,
    usage: Mapping[str, Decimal],
    *,
    until: datetime,
    invoice_id: str,
    now: datetime,
    payment_terms: timedelta,
) -> Invoice:
    """The invoice of the subscription's current period, which ends at `until` (its end, or the
    cancellation time). The fixed fee is pro-rated to `until` unless it was paid up front;
    `usage` maps each event key to what the invoice bills (`periods.billed_usage`). Issued
    OPEN, or PAID when nothing is owed; held as a DRAFT when it prices at or beyond the bound
    of money."""
    start, end = subscription.current_period_start, subscription.current_period_end
    prepaid = subscription.fee_prepaid_until is not None and subscription.fee_prepaid_until >= end
    share = Fraction(0) if prepaid else active_share(start, end, until)
    lines = tuple(period_lines(plan, usage, share))
    total = invoice_total(list(lines))
    # On a test clock the invoice lives in the subscription's time, like its period.
    issued = subscription.now(now)
    # Nothing to collect: a zero invoice is paid as it is issued.
    status = InvoiceStatus.OPEN if total > 0 else InvoiceStatus.PAID
    invoice = Invoice(
        id=invoice_id,
        merchant_id=subscription.merchant_id,
        subscription_id=subscription.id,
        service_id=subscription.service_id,
        user_id=subscription.user_id,
        plan_id=plan.id,
        status=status,
        period_start=start,
        period_end=until,
        amount=total,
        create_time=issued,
        lines=lines,
        finalize_time=issued,
        due_time=issued + payment_terms,
        paid_time=None if total > 0 else issued,
    )
    # Priced at or beyond the bound of money: held, never posted half-way.
    reason = rules.hold_reason(lines, total)
    return rules.hold(invoice, reason) if reason else invoice

"""The legal moves of an invoice's status, and the hold of a period priced beyond the bound of
money."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from invoicing_svc.domain.credits import TOP_UP_LINE
from invoicing_svc.domain.model import Invoice, InvoiceLine, InvoiceStatus, Subscription
from service_kit.decimals import MAX_AMOUNT, USDC_QUANTUM
from service_kit.errors import FailedPrecondition

ALLOWED: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.OPEN, InvoiceStatus.VOID}),
    InvoiceStatus.OPEN: frozenset(
        {InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE}
    ),
    InvoiceStatus.UNCOLLECTIBLE: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.PAID: frozenset(),
    InvoiceStatus.VOID: frozenset(),
}


MERCHANT_LINE = "Amount computed by the merchant"


def merchant_invoice(
    subscription: Subscription,
    amount: Decimal,
    *,
    invoice_id: str,
    now: datetime,
    period: tuple[datetime, datetime] | None = None,
    top_up: bool = False,
) -> Invoice:
    """A DRAFT of the subscription for a merchant-computed amount, or of a top-up selling that
    much of prepaid credits: one line."""
    description = TOP_UP_LINE if top_up else MERCHANT_LINE
    return Invoice(
        id=invoice_id,
        merchant_id=subscription.merchant_id,
        subscription_id=subscription.id,
        service_id=subscription.service_id,
        user_id=subscription.user_id,
        plan_id=subscription.plan_id,
        status=InvoiceStatus.DRAFT,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        amount=amount.quantize(USDC_QUANTUM),
        create_time=now,
        lines=(InvoiceLine(description, "", Decimal(1), amount),),
        top_up=top_up,
    )


def move(invoice: Invoice, target: InvoiceStatus) -> Invoice:
    if target not in ALLOWED[invoice.status]:
        raise FailedPrecondition(
            f"invoice {invoice.id} is {invoice.status}: it cannot become {target}", field="id"
        )
    return replace(invoice, status=target)


def finalize(invoice: Invoice, now: datetime, due_time: datetime) -> Invoice:
    if invoice.hold_reason:
        raise FailedPrecondition(
            f"invoice {invoice.id} is held and cannot be finalized: {invoice.hold_reason}",
            field="id",
        )
    return replace(move(invoice, InvoiceStatus.OPEN), finalize_time=now, due_time=due_time)


def hold_reason(lines: Sequence[InvoiceLine], total: Decimal) -> str:
    """Why a period's invoice cannot be issued: a line or the total at or above the bound of
    money, which no ledger entry, payment or transfer may carry. "" when it fits."""
    for line in lines:
        if line.amount >= MAX_AMOUNT:
            return (
                f"the line {line.description!r} prices to {line.amount:f} USDC, and an amount"
                f" must be below {MAX_AMOUNT} USDC"
            )
    if total >= MAX_AMOUNT:
        return f"the total {total:f} USDC must be below {MAX_AMOUNT} USDC"
    return ""


def hold(invoice: Invoice, reason: str) -> Invoice:
    """The period's invoice kept as a DRAFT that says why: nothing is owed, posted to the ledger
    or collected. It cannot be finalized (its period's usage is final); the merchant voids it and
    may bill what is right with CreateInvoice."""
    return replace(
        invoice,
        status=InvoiceStatus.DRAFT,
        amount=Decimal(0).quantize(USDC_QUANTUM),
        # Amounts this large cannot be stored as money: the reason names the line.
        lines=(),
        finalize_time=None,
        due_time=None,
        paid_time=None,
        hold_reason=f"{reason}; void this invoice and bill the usage with CreateInvoice",
    )


def pay(invoice: Invoice, settlement_id: str, now: datetime) -> Invoice:
    return replace(move(invoice, InvoiceStatus.PAID), settlement_id=settlement_id, paid_time=now)

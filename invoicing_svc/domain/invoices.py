"""The legal moves of an invoice's status."""

from dataclasses import replace
from datetime import datetime

from invoicing_svc.domain.model import Invoice, InvoiceStatus
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


def move(invoice: Invoice, target: InvoiceStatus) -> Invoice:
    if target not in ALLOWED[invoice.status]:
        raise FailedPrecondition(
            f"invoice {invoice.id} is {invoice.status}: it cannot become {target}", field="id"
        )
    return replace(invoice, status=target)


def finalize(invoice: Invoice, now: datetime, due_time: datetime) -> Invoice:
    return replace(move(invoice, InvoiceStatus.OPEN), finalize_time=now, due_time=due_time)


def pay(invoice: Invoice, settlement_id: str, now: datetime) -> Invoice:
    return replace(move(invoice, InvoiceStatus.PAID), settlement_id=settlement_id, paid_time=now)

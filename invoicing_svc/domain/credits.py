"""Prepaid credits on an invoice: settlement holds the credits and decides what is spent; an
invoice shows what they paid of it as one line, and is PAID as it is issued when they paid all.
A top-up invoice sells credits; an auto top-up invoices one whenever they run low."""

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from invoicing_svc.domain.model import Invoice, InvoiceLine, InvoiceStatus

CREDITS_LINE = "Credits applied"
# The one line of a top-up invoice.
TOP_UP_LINE = "Prepaid credits"


@dataclass(frozen=True)
class PrepaidAllowance:
    """What metering lets a prepaid-only subscription consume: its usage from `since` on,
    priced with its plan's charges, may cost at most `credits` (the subscriber's)."""

    credits: Decimal
    since: datetime


@dataclass(frozen=True)
class CreditReport:
    """A subscriber's balance as settlement reported it: a newer version supersedes it."""

    merchant_id: str
    user_id: str
    balance: Decimal
    version: int


def credit_key(invoice: Invoice, request_id: str = "") -> str:
    """What identifies the invoice to settlement across retries of its finalization, so credits
    are spent on it once: its subscription's period when it has one (a period is invoiced
    once), else the caller's request id when it sent one, else the invoice itself."""
    if invoice.period_start is not None:
        start = invoice.period_start.astimezone(UTC).isoformat()
        return f"{invoice.subscription_id}:{start}"
    if request_id:
        return (
            f"{invoice.subscription_id}:request:{hashlib.sha256(request_id.encode()).hexdigest()}"
        )
    return invoice.id


def takes_credits(invoice: Invoice) -> bool:
    """Only an invoice that is owed: finalized (OPEN) with an amount, never a held one, not a
    top-up (credits do not buy credits), and not an interim invoice (credits meet the period's
    own invoice, once, by the period's key)."""
    return (
        invoice.status is InvoiceStatus.OPEN
        and invoice.amount > 0
        and not invoice.top_up
        and not invoice.interim
    )


def with_credits(invoice: Invoice, applied: Decimal) -> Invoice:
    """The invoice once `applied` of the subscriber's credits paid part of it: a negative
    "Credits applied" line, the amount left to pay, and PAID at its finalization when nothing
    is."""
    if applied == 0:
        return invoice
    if not 0 < applied <= invoice.amount:
        raise ValueError(f"credits of {applied} cannot apply to an amount of {invoice.amount}")
    left = invoice.amount - applied
    paid = left == 0
    return replace(
        invoice,
        lines=(*invoice.lines, InvoiceLine(CREDITS_LINE, "", Decimal(1), -applied)),
        amount=left,
        credits_applied=applied,
        status=InvoiceStatus.PAID if paid else invoice.status,
        paid_time=invoice.finalize_time if paid else invoice.paid_time,
    )


@dataclass(frozen=True)
class AutoTopUp:
    """A subscription's standing order for credits: whenever its subscriber's balance is below
    `threshold`, a top-up of `amount` is invoiced (and collected by a mandate, if any)."""

    merchant_id: str
    subscription_id: str
    user_id: str
    threshold: Decimal
    amount: Decimal
    update_time: datetime

    def wanted(self, balance: Decimal) -> bool:
        return balance < self.threshold


@dataclass(frozen=True)
class SubscriptionBalance:
    """The subscriber's credits less what the current period has consumed so far."""

    subscription_id: str
    user_id: str
    credit_balance: Decimal
    consumed: Decimal
    lines: tuple[InvoiceLine, ...]
    period_start: datetime
    period_end: datetime
    as_of: datetime

    @property
    def balance(self) -> Decimal:
        return self.credit_balance - self.consumed

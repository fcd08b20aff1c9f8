"""Reconciliation: the ledger held against invoicing's invoices and the confirmed settlements.

Every finalized invoice is posted with its amount (and its void, once voided), every paid invoice
is paid by a confirmed settlement of it, every confirmed settlement is posted and its invoice
paid by it, every posted credit (a payment the chain watcher could not settle) is posted with its
amount and every credit posting is of one, each subscriber's receivable equals what is open, and
every journal transaction is balanced, and each subscriber's credit account holds what its credit
grants have left. Each departure is a Difference.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from settlement_svc.domain import ledger
from settlement_svc.domain.ledger import PostingKind
from settlement_svc.domain.model import InvoiceStatus, Settlement, SettlementStatus


@dataclass(frozen=True)
class ReportedInvoice:
    """An invoice as invoicing reports it."""

    id: str
    status: InvoiceStatus
    amount: Decimal
    user_id: str
    settlement_id: str
    finalized: bool


@dataclass(frozen=True)
class LedgerTotals:
    """What reconciliation reads of a merchant's ledger."""

    # (kind, reference) -> total debits of each posted transaction.
    posted: Mapping[tuple[PostingKind, str], Decimal]
    # Each receivable account's balance (debits minus credits).
    receivables: Mapping[str, Decimal]
    # (transaction id, debits minus credits) of every transaction that does not balance.
    unbalanced: Sequence[tuple[str, Decimal]]
    # Each credit account's balance (debits minus credits), and what each subscriber's credit
    # grants have left.
    credit_accounts: Mapping[str, Decimal] = field(default_factory=dict)
    grants_left: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Difference:
    kind: str
    reference: str
    expected: str
    actual: str


@dataclass(frozen=True)
class Reconciliation:
    differences: list[Difference]
    invoices_checked: int
    settlements_checked: int


def _text(amount: Decimal | None) -> str:
    return "none" if amount is None else f"{amount.quantize(Decimal('0.000001')):f}"


def _invoice_differences(
    invoices: Sequence[ReportedInvoice],
    confirmed: Mapping[str, Settlement],
    posted: Mapping[tuple[PostingKind, str], Decimal],
) -> tuple[list[Difference], dict[str, Decimal], dict[str, str]]:
    """The invoices' differences, what each subscriber owes, and the settlement that paid each
    paid invoice."""
    differences: list[Difference] = []
    open_by_user: dict[str, Decimal] = {}
    paid_by: dict[str, str] = {}
    for invoice in invoices:
        if not invoice.finalized or invoice.amount == 0:
            continue
        recorded = posted.get((PostingKind.INVOICE, invoice.id))
        if recorded != invoice.amount:
            kind = "invoice_not_posted" if recorded is None else "amount_mismatch"
            differences.append(Difference(kind, invoice.id, _text(invoice.amount), _text(recorded)))
        if (
            invoice.status is InvoiceStatus.VOID
            and (PostingKind.INVOICE_VOID, invoice.id) not in posted
        ):
            differences.append(
                Difference("void_not_posted", invoice.id, _text(invoice.amount), "none")
            )
        if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            open_by_user[invoice.user_id] = (
                open_by_user.get(invoice.user_id, Decimal(0)) + invoice.amount
            )
        if invoice.status is InvoiceStatus.PAID:
            paid_by[invoice.id] = invoice.settlement_id
            settlement = confirmed.get(invoice.settlement_id)
            if settlement is None or settlement.invoice_id != invoice.id:
                differences.append(
                    Difference(
                        "paid_without_settlement",
                        invoice.id,
                        "confirmed settlement",
                        invoice.settlement_id or "none",
                    )
                )
    return differences, open_by_user, paid_by


def _settlement_differences(
    confirmed: Mapping[str, Settlement],
    posted: Mapping[tuple[PostingKind, str], Decimal],
    paid_by: Mapping[str, str],
) -> list[Difference]:
    differences: list[Difference] = []
    for settlement in confirmed.values():
        if settlement.status is not SettlementStatus.CONFIRMED:
            continue
        kind = PostingKind.PAYMENT if settlement.invoice_id else PostingKind.CHECKOUT_PAYMENT
        if (kind, settlement.id) not in posted:
            differences.append(
                Difference(
                    "payment_not_posted", settlement.id, _text(settlement.amount_paid), "none"
                )
            )
        if settlement.invoice_id and paid_by.get(settlement.invoice_id) != settlement.id:
            differences.append(
                Difference(
                    "invoice_not_paid",
                    settlement.invoice_id,
                    settlement.id,
                    paid_by.get(settlement.invoice_id, "none"),
                )
            )
    return differences


def _receivable_differences(
    receivables: Mapping[str, Decimal], open_by_user: Mapping[str, Decimal]
) -> list[Difference]:
    differences: list[Difference] = []
    for account in sorted(set(receivables) | {ledger.receivable(u) for u in open_by_user}):
        user_id = account.split(":", 1)[1]
        expected = open_by_user.get(user_id, Decimal(0))
        actual = receivables.get(account, Decimal(0))
        if expected != actual:
            differences.append(
                Difference("receivable_mismatch", account, _text(expected), _text(actual))
            )
    return differences


def _credit_differences(
    credits: Mapping[str, Decimal], posted: Mapping[tuple[PostingKind, str], Decimal]
) -> list[Difference]:
    """Every posted credit is in the journal with its amount, and every credit posting is of a
    posted credit."""
    differences: list[Difference] = []
    for credit_id, amount in sorted(credits.items()):
        recorded = posted.get((PostingKind.CREDIT, credit_id))
        if recorded != amount:
            differences.append(
                Difference("credit_not_posted", credit_id, _text(amount), _text(recorded))
            )
    for (kind, reference), amount in sorted(posted.items()):
        if kind is PostingKind.CREDIT and reference not in credits:
            differences.append(
                Difference("credit_posting_without_credit", reference, "none", _text(amount))
            )
    return differences


def _credit_balance_differences(books: LedgerTotals) -> list[Difference]:
    """Each subscriber's credit account holds what its grants have left."""
    differences: list[Difference] = []
    accounts = set(books.credit_accounts) | {ledger.credit(u) for u in books.grants_left}
    for account in sorted(accounts):
        expected = books.grants_left.get(account.split(":", 1)[1], Decimal(0))
        actual = -books.credit_accounts.get(account, Decimal(0))
        if expected != actual:
            differences.append(
                Difference("credit_balance_mismatch", account, _text(expected), _text(actual))
            )
    return differences


def reconcile(
    invoices: Sequence[ReportedInvoice],
    confirmed: Sequence[Settlement],
    books: LedgerTotals,
    credits: Mapping[str, Decimal] | None = None,
) -> Reconciliation:
    """The differences between the ledger and the invoices, confirmed settlements and posted
    credits (id -> amount): the invoices' first, then the settlements', the credits', the
    receivables' and the unbalanced transactions'."""
    by_id = {settlement.id: settlement for settlement in confirmed}
    differences, open_by_user, paid_by = _invoice_differences(invoices, by_id, books.posted)
    differences += _settlement_differences(by_id, books.posted, paid_by)
    differences += _credit_differences(credits or {}, books.posted)
    differences += _receivable_differences(books.receivables, open_by_user)
    differences += _credit_balance_differences(books)
    differences += [
        Difference("unbalanced", transaction_id, "0.000000", _text(difference))
        for transaction_id, difference in books.unbalanced
    ]
    return Reconciliation(differences, len(invoices), len(by_id))

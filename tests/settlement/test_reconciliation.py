"""The reconciliation comparison (pure): each kind of difference, in its order."""

from datetime import UTC, datetime
from decimal import Decimal

from settlement_svc.domain.ledger import PostingKind
from settlement_svc.domain.model import InvoiceStatus, Settlement, SettlementStatus
from settlement_svc.domain.reconciliation import (
    Difference,
    LedgerTotals,
    ReportedInvoice,
    reconcile,
)

D = Decimal
INVOICE, PAYMENT = PostingKind.INVOICE, PostingKind.PAYMENT
MOMENT = datetime(2025, 1, 1, tzinfo=UTC)


def _settlement(settlement_id: str, invoice_id: str, paid: str) -> Settlement:
    return Settlement(
        id=settlement_id,
        merchant_id="m_1",
        invoice_id=invoice_id,
        checkout_session_id="" if invoice_id else "cs_1",
        user_id="u_1",
        reference_hash="0x00",
        transaction_hash="0x01",
        payer_wallet_address="0x02",
        merchant_wallet_address="0x03",
        amount_due=D(paid),
        status=SettlementStatus.CONFIRMED,
        create_time=MOMENT,
        amount_paid=D(paid),
    )


def test_a_ledger_that_matches_has_no_difference() -> None:
    invoices = [ReportedInvoice("in_1", InvoiceStatus.PAID, D(5), "u_1", "st_1", True)]
    books = LedgerTotals(
        posted={(INVOICE, "in_1"): D(5), (PAYMENT, "st_1"): D(5)},
        receivables={"receivable:u_1": D(0)},
        unbalanced=[],
    )
    result = reconcile(invoices, [_settlement("st_1", "in_1", "5")], books)
    assert (result.differences, result.invoices_checked, result.settlements_checked) == ([], 1, 1)


def test_every_difference_is_reported_invoices_first() -> None:
    invoices = [
        ReportedInvoice("in_open", InvoiceStatus.OPEN, D(3), "u_1", "", True),
        ReportedInvoice("in_void", InvoiceStatus.VOID, D(2), "u_1", "", True),
        ReportedInvoice("in_paid", InvoiceStatus.PAID, D(4), "u_2", "st_other", True),
        ReportedInvoice("in_draft", InvoiceStatus.DRAFT, D(9), "u_1", "", False),
    ]
    books = LedgerTotals(
        posted={(INVOICE, "in_open"): D(1), (INVOICE, "in_void"): D(2)},
        receivables={"receivable:u_3": D(7)},
        unbalanced=[("jtx_1", D("0.5"))],
    )
    confirmed = [_settlement("st_1", "in_paid", "4"), _settlement("st_2", "", "6")]
    result = reconcile(invoices, confirmed, books)
    assert result.differences == [
        Difference("amount_mismatch", "in_open", "3.000000", "1.000000"),
        Difference("void_not_posted", "in_void", "2.000000", "none"),
        Difference("invoice_not_posted", "in_paid", "4.000000", "none"),
        Difference("paid_without_settlement", "in_paid", "confirmed settlement", "st_other"),
        Difference("payment_not_posted", "st_1", "4.000000", "none"),
        Difference("invoice_not_paid", "in_paid", "st_1", "st_other"),
        Difference("payment_not_posted", "st_2", "6.000000", "none"),
        Difference("receivable_mismatch", "receivable:u_1", "3.000000", "0.000000"),
        Difference("receivable_mismatch", "receivable:u_3", "0.000000", "7.000000"),
        Difference("unbalanced", "jtx_1", "0.000000", "0.500000"),
    ]
    assert (result.invoices_checked, result.settlements_checked) == (4, 2)


def test_posted_credits_reconcile_with_their_postings() -> None:
    """A credit (a payment the chain watcher could not settle) debits usdc_received and credits
    credit:<user>: no receivable and no invoice moves, so it matches with no difference."""
    invoices = [ReportedInvoice("in_1", InvoiceStatus.OPEN, D(5), "u_1", "", True)]
    books = LedgerTotals(
        posted={(INVOICE, "in_1"): D(5), (PostingKind.CREDIT, "cre_1"): D("0.75")},
        receivables={"receivable:u_1": D(5)},
        unbalanced=[],
    )
    assert reconcile(invoices, [], books, {"cre_1": D("0.75")}).differences == []
    assert reconcile(invoices, [], books, {"cre_1": D("0.5"), "cre_2": D(1)}).differences == [
        Difference("credit_not_posted", "cre_1", "0.500000", "0.750000"),
        Difference("credit_not_posted", "cre_2", "1.000000", "none"),
    ]
    assert reconcile(invoices, [], books).differences == [
        Difference("credit_posting_without_credit", "cre_1", "none", "0.750000"),
    ]

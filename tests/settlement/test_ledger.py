"""The journal: append-only, balanced by the database itself, and balanced by construction."""

from decimal import Decimal

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.settlement.v1 import settlement_pb2 as pb
from settlement_svc.domain import ledger
from tests.settlement.conftest import Shop


async def test_journal_rows_and_confirmed_settlements_never_change(
    shop: Shop, db: asyncpg.Connection
) -> None:
    invoice = await shop.open_invoice()
    settlement = await shop.submit(invoice.id, await shop.pay(500_000))
    await shop.settle()
    statements = [
        (
            "UPDATE settlement.journal_entries SET debit = debit + 1 WHERE merchant_id = $1",
            "append-only",
        ),
        ("DELETE FROM settlement.journal_transactions WHERE merchant_id = $1", "append-only"),
        ("UPDATE settlement.settlements SET amount_paid = 0 WHERE merchant_id = $1", "immutable"),
    ]
    for statement, refusal in statements:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=refusal):
            await db.execute(statement, shop.merchant.merchant_id)
    confirmed = await shop.get(settlement.id)
    assert (confirmed.status, confirmed.amount_paid) == (pb.SETTLEMENT_STATUS_CONFIRMED, "0.500000")


async def test_the_database_refuses_an_unbalanced_transaction(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="unbalanced"):
        async with db.transaction():
            await db.execute(
                "INSERT INTO settlement.journal_transactions"
                " VALUES ('jtx_bad', 'mer_x', 'invoice', 'in_x', now())"
            )
            await db.execute(
                "INSERT INTO settlement.journal_entries"
                " (transaction_id, line_number, merchant_id, account, debit, credit) VALUES"
                " ('jtx_bad', 1, 'mer_x', 'revenue', 0, 1),"
                " ('jtx_bad', 2, 'mer_x', 'receivable:u', 0.5, 0)"
            )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM settlement.journal_transactions WHERE id = 'jtx_bad'"
        )
        == 0
    )


async def test_posting_an_invoice_twice_records_it_once(shop: Shop) -> None:
    request = pb.RecordInvoiceRequest(invoice_id="in_twice", user_id="usr_1", amount="2.5")
    first = await shop.platform.stub.RecordInvoice(request, metadata=shop.metadata)
    again = await shop.platform.stub.RecordInvoice(request, metadata=shop.metadata)
    assert first.transaction_id == again.transaction_id
    assert await shop.balance("receivable:usr_1") == "2.500000"
    voided = pb.RecordInvoiceRequest(
        invoice_id="in_twice", user_id="usr_1", amount="2.5", voided=True
    )
    await shop.platform.stub.RecordInvoice(voided, metadata=shop.metadata)
    await shop.platform.stub.RecordInvoice(voided, metadata=shop.metadata)
    assert await shop.balance("receivable:usr_1") == "0.000000"
    assert await shop.balance("revenue") == "0.000000"


amounts = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("100000"), places=6)
events = st.lists(
    st.tuples(
        st.sampled_from(["invoice", "void", "payment", "checkout"]),
        st.sampled_from(["u1", "u2", "u3"]),
        amounts,
        amounts,
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_any_sequence_of_postings_keeps_debits_equal_to_credits(
    sequence: list[tuple[str, str, Decimal, Decimal]],
) -> None:
    balances: dict[str, Decimal] = {}
    open_amounts: dict[str, Decimal] = {}
    for kind, user, due, paid in sequence:
        paid = max(paid, due)  # a confirmed payment covers what is due
        match kind:
            case "invoice":
                entries = ledger.invoice_posting(user, due)
                open_amounts[user] = open_amounts.get(user, Decimal(0)) + due
            case "void":
                entries = ledger.void_posting(user, due)
                open_amounts[user] = open_amounts.get(user, Decimal(0)) - due
            case "payment":
                entries = ledger.payment_posting(user, due, paid)
                open_amounts[user] = open_amounts.get(user, Decimal(0)) - due
            case _:
                entries = ledger.checkout_payment_posting(user, due, paid)
        assert ledger.is_balanced(entries)
        assert all((e.debit > 0) != (e.credit > 0) for e in entries)
        for entry in entries:
            balances[entry.account] = (
                balances.get(entry.account, Decimal(0)) + entry.debit - entry.credit
            )
    assert sum(balances.values(), Decimal(0)) == 0
    for user, amount in open_amounts.items():
        assert balances.get(ledger.receivable(user), Decimal(0)) == amount

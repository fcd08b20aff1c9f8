"""The journal: append-only, balanced by the database itself, and balanced by construction."""

from decimal import Decimal

import asyncpg
import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.settlement.v1 import settlement_pb2 as pb
from service_kit.grpc_errors import field_of
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


def invoice(invoice_id: str, amount: str, **fields: object) -> pb.RecordInvoiceRequest:
    values: dict[str, object] = {"invoice_id": invoice_id, "user_id": "usr_1", "amount": amount}
    values.update(fields)
    return pb.RecordInvoiceRequest(**values)  # type: ignore[arg-type]


async def record_batch(shop: Shop, *invoices: pb.RecordInvoiceRequest) -> list[str]:
    answer = await shop.platform.stub.BatchRecordInvoices(
        pb.BatchRecordInvoicesRequest(invoices=invoices), metadata=shop.metadata
    )
    return [result.transaction_id for result in answer.results]


async def journal(db: asyncpg.Connection, shop: Shop) -> list[tuple[str, str, str]]:
    """(kind, reference, transaction id) of each journal transaction of the shop."""
    rows = await db.fetch(
        "SELECT kind, reference, id FROM settlement.journal_transactions"
        " WHERE merchant_id = $1 ORDER BY reference, kind",
        shop.merchant.merchant_id,
    )
    return [tuple(row) for row in rows]


async def test_a_batch_records_each_invoice_as_record_invoice_does_once(
    shop: Shop, db: asyncpg.Connection
) -> None:
    batch = [
        invoice("in_a", "2.5"),
        invoice("in_b", "1.25", user_id="usr_2", voided=True),
        invoice("in_zero", "0"),
    ]
    first = await record_batch(shop, *batch)
    again = await record_batch(shop, *batch)
    single = await shop.platform.stub.RecordInvoice(batch[0], metadata=shop.metadata)
    posted = await journal(db, shop)
    assert [kind for kind, _, _ in posted] == ["invoice", "invoice", "invoice_void"]
    by_posting = {(kind, reference): id_ for kind, reference, id_ in posted}
    # A voided invoice answers with its reversal; a zero invoice moves nothing.
    assert first == again == [by_posting["invoice", "in_a"], by_posting["invoice_void", "in_b"], ""]
    assert single.transaction_id == first[0]
    entries = await db.fetchval(
        "SELECT count(*) FROM settlement.journal_entries WHERE merchant_id = $1",
        shop.merchant.merchant_id,
    )
    assert entries == 6
    assert await shop.balance("receivable:usr_1") == "2.500000"
    assert await shop.balance("receivable:usr_2") == "0.000000"
    assert await shop.balance("revenue") == "-2.500000"


async def test_a_batch_refuses_bad_invoices_by_position_and_records_none(
    shop: Shop, db: asyncpg.Connection
) -> None:
    good = invoice("in_good", "1")

    async def refused(*invoices: pb.RecordInvoiceRequest) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await record_batch(shop, *invoices)
        return caught.value.code(), field_of(caught.value)

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert await refused() == (invalid, "invoices")
    assert await refused(*[good] * 1001) == (invalid, "invoices")
    assert await refused(good, good) == (invalid, "invoices[1].invoice_id")
    assert await refused(good, invoice("", "1")) == (invalid, "invoices[1].invoice_id")
    assert await refused(good, invoice("in_x", "1", user_id="")) == (invalid, "invoices[1].user_id")
    assert await refused(good, invoice("in_x", "0.0000001")) == (invalid, "invoices[1].amount")
    assert await refused(good, invoice("in_x", "-1")) == (invalid, "invoices[1].amount")
    assert await journal(db, shop) == []
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

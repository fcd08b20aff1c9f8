"""Seed 000 to the end: usage, invoice, a real USDC transfer on anvil, verification, ledger."""

import json
from datetime import timedelta

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from tests.conftest import CONFIRMATIONS, field_violation
from tests.settlement.conftest import Shop


async def test_seed_000_paid_on_chain_confirms_pays_and_reconciles(
    shop: Shop, db: asyncpg.Connection
) -> None:
    merchant = shop.merchant
    plan = await merchant.plan(pricing_type=ipb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await merchant.subscribe(plan)
    for _ in range(10):
        await merchant.record(subscription, "token_generated", "5000")
    await merchant.advance(subscription, timedelta(days=31, hours=2))
    await merchant.relay()
    [invoice] = await merchant.invoices(subscription)
    assert invoice.amount == "0.500000"
    assert await shop.balance(f"receivable:{invoice.user_id}") == "0.500000"

    transaction = await shop.pay(500_000)
    pending = await shop.submit(invoice.id, transaction)

    assert pending.status == pb.SETTLEMENT_STATUS_PENDING
    assert (pending.confirmations, pending.amount_due) == (0, "0.500000")
    await shop.settle()
    confirmed = await shop.get(pending.id)
    assert confirmed.status == pb.SETTLEMENT_STATUS_CONFIRMED
    assert (confirmed.amount_paid, confirmed.confirmations) == ("0.500000", CONFIRMATIONS)
    assert confirmed.transaction_hash == transaction
    paid = await merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    assert (paid.status, paid.settlement_id) == (ipb.INVOICE_STATUS_PAID, confirmed.id)
    assert await shop.balance(f"receivable:{invoice.user_id}") == "0.000000"
    assert await shop.balance("usdc_received") == "0.500000"
    assert await shop.balance("revenue") == "-0.500000"
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    assert list(report.differences) == []
    assert (report.invoices_checked, report.settlements_checked) == (1, 1)
    webhooks = await db.fetch(
        "SELECT payload->'data' AS data FROM invoicing.outbox"
        " WHERE merchant_id = $1 AND payload->>'type' = 'settlement.confirmed'",
        shop.metadata[0][1],
    )
    assert [json.loads(row["data"])["transactionHash"] for row in webhooks] == [transaction]
    entries = await shop.platform.stub.ListEntries(pb.ListEntriesRequest(), metadata=shop.metadata)
    assert [(e.kind, e.account, e.debit, e.credit) for e in entries.entries] == [
        ("payment", "usdc_received", "0.500000", "0.000000"),
        ("payment", f"receivable:{invoice.user_id}", "0.000000", "0.500000"),
        ("invoice", f"receivable:{invoice.user_id}", "0.500000", "0.000000"),
        ("invoice", "revenue", "0.000000", "0.500000"),
    ]


async def test_an_overpayment_becomes_the_subscribers_credit(shop: Shop) -> None:
    invoice = await shop.open_invoice("0.5")
    settlement = await shop.submit(invoice.id, await shop.pay(600_000))
    await shop.settle()

    assert (await shop.get(settlement.id)).amount_paid == "0.600000"
    assert await shop.balance(f"credit:{invoice.user_id}") == "-0.100000"
    assert await shop.balance("usdc_received") == "0.600000"
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    assert list(report.differences) == []


async def test_a_checkout_paid_up_front_starts_the_subscription(shop: Shop) -> None:
    merchant = shop.merchant
    plan = await merchant.plan(pricing_type=ipb.PRICING_TYPE_FIXED_RECURRING, amount="9.99")
    session = await merchant.checkout(plan)
    transaction = await shop.pay(9_990_000)
    waiting = await merchant.stub.CompleteCheckoutSession(
        ipb.CompleteCheckoutSessionRequest(
            id=session.id,
            payment=ipb.PaymentProof(transaction_hash=transaction, payer_wallet_address=shop.payer),
        ),
        metadata=shop.metadata,
    )
    assert waiting.status == ipb.CHECKOUT_SESSION_STATUS_AWAITING_PAYMENT

    settlement = await shop.platform.stub.SubmitSettlement(
        pb.SubmitSettlementRequest(
            checkout_session_id=session.id,
            reference_hash="0x" + "77" * 32,
            transaction_hash=transaction,
            payer_wallet_address=shop.payer,
            merchant_wallet_address=shop.wallet,
        ),
        metadata=shop.metadata,
    )
    await shop.settle()

    done = await merchant.stub.GetCheckoutSession(
        ipb.GetCheckoutSessionRequest(id=session.id), metadata=shop.metadata
    )
    assert done.status == ipb.CHECKOUT_SESSION_STATUS_COMPLETE
    assert (await shop.get(settlement.id)).status == pb.SETTLEMENT_STATUS_CONFIRMED
    assert await shop.balance("revenue") == "-9.990000"


async def test_a_failed_checkout_payment_opens_the_checkout_again(shop: Shop) -> None:
    merchant = shop.merchant
    plan = await merchant.plan(pricing_type=ipb.PRICING_TYPE_FIXED_RECURRING, amount="5")
    session = await merchant.checkout(plan)

    async def pay(base_units: int) -> pb.Settlement:
        transaction = await shop.pay(base_units)
        settlement = await shop.platform.stub.SubmitSettlement(
            pb.SubmitSettlementRequest(
                checkout_session_id=session.id,
                reference_hash="0x" + "77" * 32,
                transaction_hash=transaction,
                payer_wallet_address=shop.payer,
                merchant_wallet_address=shop.wallet,
            ),
            metadata=shop.metadata,
        )
        await merchant.stub.CompleteCheckoutSession(
            ipb.CompleteCheckoutSessionRequest(
                id=session.id,
                payment=ipb.PaymentProof(
                    transaction_hash=transaction, payer_wallet_address=shop.payer
                ),
            ),
            metadata=shop.metadata,
        )
        await shop.settle()
        return await shop.get(settlement.id)

    short = await pay(4_999_999)
    reopened = await merchant.stub.GetCheckoutSession(
        ipb.GetCheckoutSessionRequest(id=session.id), metadata=shop.metadata
    )
    assert short.failure_reason == pb.FAILURE_REASON_SHORT_AMOUNT
    assert (reopened.status, reopened.HasField("payment")) == (
        ipb.CHECKOUT_SESSION_STATUS_OPEN,
        False,
    )

    paid = await pay(5_000_000)
    done = await merchant.stub.GetCheckoutSession(
        ipb.GetCheckoutSessionRequest(id=session.id), metadata=shop.metadata
    )
    assert paid.status == pb.SETTLEMENT_STATUS_CONFIRMED
    assert done.status == ipb.CHECKOUT_SESSION_STATUS_COMPLETE


async def test_a_made_up_transaction_does_not_hold_a_checkout(shop: Shop) -> None:
    """The checkout page is public: a proof of a transaction the node does not know is refused at
    once, so the session never waits for it and the real payment goes through."""
    merchant = shop.merchant
    plan = await merchant.plan(pricing_type=ipb.PRICING_TYPE_FIXED_RECURRING, amount="5")
    session = await merchant.checkout(plan)

    def proof(transaction: str) -> pb.SubmitSettlementRequest:
        return pb.SubmitSettlementRequest(
            checkout_session_id=session.id,
            reference_hash="0x" + "77" * 32,
            transaction_hash=transaction,
            payer_wallet_address=shop.payer,
        )

    with pytest.raises(grpc.aio.AioRpcError) as made_up:
        await shop.platform.stub.SubmitSettlement(proof("0x" + "de" * 32), metadata=shop.metadata)
    assert (made_up.value.code(), field_violation(made_up.value), made_up.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "transaction_hash",
        "the chain does not know this transaction; submit it once it is broadcast",
    )
    still_open = await merchant.stub.GetCheckoutSession(
        ipb.GetCheckoutSessionRequest(id=session.id), metadata=shop.metadata
    )
    assert still_open.status == ipb.CHECKOUT_SESSION_STATUS_OPEN

    settlement = await shop.platform.stub.SubmitSettlement(
        proof(await shop.pay(5_000_000)), metadata=shop.metadata
    )
    await merchant.stub.CompleteCheckoutSession(
        ipb.CompleteCheckoutSessionRequest(
            id=session.id,
            payment=ipb.PaymentProof(
                transaction_hash=settlement.transaction_hash, payer_wallet_address=shop.payer
            ),
        ),
        metadata=shop.metadata,
    )
    await shop.settle()
    done = await merchant.stub.GetCheckoutSession(
        ipb.GetCheckoutSessionRequest(id=session.id), metadata=shop.metadata
    )
    assert done.status == ipb.CHECKOUT_SESSION_STATUS_COMPLETE

"""The chain watcher on anvil: a used authorization bound to a payment request settles its
invoice whoever sent it, once; one that cannot settle is the subscriber's credit; another
wallet's money is ignored; a reorg before finality un-sees a payment; a range read again
creates nothing twice."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil
from settlement_svc.domain.chain_logs import CreditReason
from settlement_svc.domain.credits import Credit, CreditStatus
from settlement_svc.domain.payment_requests import PaymentRequest, new_reference_hash
from settlement_svc.service_layer.unit_of_work import Settlements
from settlement_svc.service_layer.watcher import WatchPass, watch_once
from tests.conftest import CONFIRMATIONS
from tests.settlement.authorizations import sign
from tests.settlement.conftest import Shop
from tests.settlement.test_payment_requests import request_of
from tests.settlement.test_relay import relay

PAYER = 1
OTHER_PAYER = 2


async def caught_up(settlements: Settlements) -> None:
    """Passes until one finds nothing more to read (other tests' blocks included)."""
    while await watch_once(settlements):
        pass


async def pay_directly(
    shop: Shop, anvil: Anvil, payer: int, request: pb.PaymentRequest, **overrides: Any
) -> str:
    """The payer's own wallet submits its authorization of the request (it pays the gas; no
    relayer involved); returns the transaction."""
    authorization = sign(anvil.private_keys[payer], request, **overrides)
    await shop.usdc.mint(anvil.accounts[payer], int(authorization.value), shop.minter)
    message = {
        "from": authorization.from_address,
        "to": authorization.to_address,
        "value": authorization.value,
        "validAfter": authorization.valid_after,
        "validBefore": authorization.valid_before,
        "nonce": authorization.nonce,
    }
    return await shop.usdc.transfer_with_authorization(
        anvil.accounts[payer], message, authorization.signature
    )


async def settlements_of(shop: Shop, invoice_id: str) -> list[pb.Settlement]:
    found = await shop.platform.stub.ListSettlements(
        pb.ListSettlementsRequest(invoice_id=invoice_id), metadata=shop.metadata
    )
    return list(found.settlements)


async def credits_of(shop: Shop) -> list[Credit]:
    async with shop.platform.settlements.unit_of_work() as uow:
        return await uow.credits.of_merchant(shop.merchant.merchant_id)


async def final(shop: Shop) -> WatchPass:
    """The confirmations mined, then a watcher pass (which posts the credits now final)."""
    await shop.usdc.mine(CONFIRMATIONS)
    return await watch_once(shop.platform.settlements)


async def webhooks(db: asyncpg.Connection, shop: Shop, kind: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT payload->'data' AS data FROM invoicing.outbox"
        " WHERE merchant_id = $1 AND payload->>'type' = $2",
        shop.merchant.merchant_id,
        kind,
    )
    return [json.loads(row["data"]) for row in rows]


async def test_a_payment_sent_by_the_payers_own_wallet_settles_its_invoice_once(
    shop: Shop, anvil: Anvil, db: asyncpg.Connection
) -> None:
    watcher = shop.platform.settlements
    await caught_up(watcher)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    transaction = await pay_directly(shop, anvil, PAYER, request)

    found = await watch_once(watcher)
    assert (found.settlements, found.credits) == (1, 0)
    again = await watch_once(watcher)
    assert (again.scanned_blocks, again.settlements, again.credits) == (0, 0, 0)
    [pending] = await settlements_of(shop, invoice.id)
    assert (pending.status, pending.origin) == (
        pb.SETTLEMENT_STATUS_PENDING,
        pb.SETTLEMENT_ORIGIN_WATCHER,
    )
    assert (pending.transaction_hash, pending.reference_hash) == (
        transaction,
        request.reference_hash,
    )
    assert (pending.payer_wallet_address, pending.merchant_wallet_address) == (
        anvil.accounts[PAYER],
        shop.wallet,
    )
    assert (pending.amount_due, pending.block_number) == ("0.500000", pending.block_number)

    await shop.settle()
    for _ in range(3):
        assert (await watch_once(watcher)).settlements == 0
    [confirmed] = await settlements_of(shop, invoice.id)
    assert (confirmed.id, confirmed.status, confirmed.amount_paid) == (
        pending.id,
        pb.SETTLEMENT_STATUS_CONFIRMED,
        "0.500000",
    )
    paid = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    assert (paid.status, paid.settlement_id) == (ipb.INVOICE_STATUS_PAID, confirmed.id)
    assert await shop.balance("usdc_received") == "0.500000"
    assert await shop.balance(f"receivable:{invoice.user_id}") == "0.000000"
    assert await shop.usdc.balance(shop.wallet) == 500_000
    assert [w["transactionHash"] for w in await webhooks(db, shop, "settlement.confirmed")] == [
        transaction
    ]
    assert [w["id"] for w in await webhooks(db, shop, "invoice.paid")] == [invoice.id]
    assert await credits_of(shop) == []
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    assert list(report.differences) == []


async def test_a_checkout_fee_paid_from_the_wallet_starts_the_subscription(
    shop: Shop, anvil: Anvil
) -> None:
    watcher = shop.platform.settlements
    await caught_up(watcher)
    plan = await shop.merchant.plan(pricing_type=ipb.PRICING_TYPE_FIXED_RECURRING, amount="9.99")
    session = await shop.merchant.checkout(plan)
    request = await shop.platform.stub.GetPaymentRequest(
        pb.GetPaymentRequestRequest(checkout_session_id=session.id), metadata=shop.metadata
    )
    await pay_directly(shop, anvil, PAYER, request)
    assert (await watch_once(watcher)).settlements == 1
    await shop.settle()
    done = await shop.merchant.stub.GetCheckoutSession(
        ipb.GetCheckoutSessionRequest(id=session.id), metadata=shop.metadata
    )
    assert done.status == ipb.CHECKOUT_SESSION_STATUS_COMPLETE
    assert await shop.balance("revenue") == "-9.990000"
    assert await shop.balance("usdc_received") == "9.990000"


async def test_our_relayed_payment_is_never_counted_twice_even_when_the_watcher_lags(
    shop: Shop, anvil: Anvil
) -> None:
    """The relay made the settlement of this transaction; the verifier confirms it before the
    watcher reads its block: the watcher neither settles nor credits it again."""
    watcher = shop.platform.settlements
    await caught_up(watcher)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    await shop.usdc.mint(shop.payer, 500_000, shop.minter)
    relayed = await relay(shop, invoice.id, sign(anvil.private_keys[PAYER], request))
    await shop.settle()
    assert (await shop.get(relayed.id)).status == pb.SETTLEMENT_STATUS_CONFIRMED

    passed = await watch_once(watcher)
    assert (passed.settlements, passed.credits) == (0, 0)
    assert [s.id for s in await settlements_of(shop, invoice.id)] == [relayed.id]
    assert await credits_of(shop) == []
    await final(shop)
    assert await shop.balance("usdc_received") == "0.500000"
    assert await shop.balance(f"credit:{invoice.user_id}") == "0.000000"


async def test_a_second_payment_of_a_paid_request_is_the_subscribers_credit(
    shop: Shop, anvil: Anvil
) -> None:
    watcher = shop.platform.settlements
    await caught_up(watcher)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    await pay_directly(shop, anvil, PAYER, request)
    await watch_once(watcher)
    await shop.settle()
    # Another wallet signs the same reference (its own authorization slot): paid already.
    second = await pay_directly(shop, anvil, OTHER_PAYER, request)
    found = await watch_once(watcher)
    assert (found.settlements, found.credits, found.credits_posted) == (0, 1, 0)
    [credit] = await credits_of(shop)
    assert (credit.reason, credit.status, credit.amount) == (
        CreditReason.ALREADY_PAID,
        CreditStatus.PENDING,
        Decimal("0.500000"),
    )
    assert (credit.transaction_hash, credit.payer_wallet_address, credit.invoice_id) == (
        second,
        anvil.accounts[OTHER_PAYER],
        invoice.id,
    )
    assert await shop.balance(f"credit:{invoice.user_id}") == "0.000000"  # not final yet

    assert (await final(shop)).credits_posted == 1
    assert await shop.balance(f"credit:{invoice.user_id}") == "-0.500000"
    assert await shop.balance("usdc_received") == "1.000000"
    assert (await watch_once(watcher)).credits_posted == 0
    assert await shop.balance(f"credit:{invoice.user_id}") == "-0.500000"
    [posted] = await credits_of(shop)
    assert (posted.status, posted.post_time) == (CreditStatus.POSTED, shop.platform.clock.now())
    assert len(await settlements_of(shop, invoice.id)) == 1
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    assert list(report.differences) == []


async def test_a_payment_to_an_expired_request_is_credited(shop: Shop, anvil: Anvil) -> None:
    """Expiry is judged at the block's time. The authorization itself is valid (the token takes
    it); only the request it is bound to expired."""
    watcher = shop.platform.settlements
    await caught_up(watcher)
    invoice = await shop.open_invoice("0.75")
    chain_now = datetime.fromtimestamp(await shop.usdc.block_time(), UTC)
    expired = PaymentRequest(
        reference_hash=new_reference_hash(),
        merchant_id=shop.merchant.merchant_id,
        invoice_id=invoice.id,
        checkout_session_id="",
        user_id=invoice.user_id,
        amount=Decimal("0.75"),
        payee=shop.wallet,
        token=shop.usdc.address,
        chain_id=31337,
        create_time=chain_now - timedelta(days=8),
        expire_time=chain_now - timedelta(days=1),
    )
    async with watcher.unit_of_work() as uow:
        await uow.payment_requests.add(expired)
        await uow.commit()
    request = pb.PaymentRequest(
        reference_hash=expired.reference_hash,
        amount_base_units="750000",
        payee_wallet_address=shop.wallet,
        token_address=shop.usdc.address,
        chain_id=31337,
        token_name="USD Coin",
        token_version="2",
    )
    valid_until = int((chain_now + timedelta(hours=1)).timestamp())
    transaction = await pay_directly(shop, anvil, PAYER, request, validBefore=valid_until)

    found = await watch_once(watcher)
    assert (found.settlements, found.credits) == (0, 1)
    # The money is the credit now: a proof of the same transaction cannot also pay the invoice.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await shop.submit(invoice.id, transaction, payer_wallet_address=anvil.accounts[PAYER])
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert refused.value.details() == (
        "this transaction's payment is recorded already as the subscriber's credit"
    )
    assert await settlements_of(shop, invoice.id) == []
    [credit] = await credits_of(shop)
    assert (credit.reason, credit.amount, credit.reference_hash) == (
        CreditReason.EXPIRED,
        Decimal("0.750000"),
        expired.reference_hash,
    )
    await final(shop)
    assert await shop.balance(f"credit:{invoice.user_id}") == "-0.750000"
    assert await shop.balance("usdc_received") == "0.750000"
    assert await shop.balance(f"receivable:{invoice.user_id}") == "0.750000"  # still owed


async def test_a_short_payment_is_credited_and_the_invoice_stays_open(
    shop: Shop, anvil: Anvil
) -> None:
    watcher = shop.platform.settlements
    await caught_up(watcher)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    await pay_directly(shop, anvil, PAYER, request, value=499_999)
    found = await watch_once(watcher)
    assert (found.settlements, found.credits) == (0, 1)
    [credit] = await credits_of(shop)
    assert (credit.reason, credit.amount) == (CreditReason.SHORT_AMOUNT, Decimal("0.499999"))
    await final(shop)
    assert await shop.balance(f"credit:{invoice.user_id}") == "-0.499999"
    still = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    assert still.status == ipb.INVOICE_STATUS_OPEN
    assert await settlements_of(shop, invoice.id) == []


async def test_a_payment_to_a_voided_invoices_request_is_credited(shop: Shop, anvil: Anvil) -> None:
    """The request outlives the void (its expiry is days away) and the payer's wallet can still
    use it; the invoice owes nothing any more, so the money is the subscriber's credit."""
    watcher = shop.platform.settlements
    await caught_up(watcher)
    invoice = await shop.open_invoice("0.25")
    request = await request_of(shop, invoice.id)
    await shop.merchant.stub.VoidInvoice(
        ipb.VoidInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    await shop.merchant.relay()  # the ledger records the void
    await pay_directly(shop, anvil, PAYER, request)

    found = await watch_once(watcher)
    assert (found.settlements, found.credits) == (0, 1)
    assert await settlements_of(shop, invoice.id) == []
    [credit] = await credits_of(shop)
    assert (credit.reason, credit.amount, credit.invoice_id) == (
        CreditReason.VOIDED,
        Decimal("0.250000"),
        invoice.id,
    )
    await final(shop)
    assert await shop.balance(f"credit:{invoice.user_id}") == "-0.250000"
    assert await shop.balance(f"receivable:{invoice.user_id}") == "0.000000"
    voided = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    assert voided.status == ipb.INVOICE_STATUS_VOID


async def test_money_sent_to_another_wallet_with_our_reference_is_ignored(
    shop: Shop, other_shop: Shop, anvil: Anvil
) -> None:
    """Bound to this merchant's request, but paid to another merchant's wallet: it settles
    nothing and credits nobody, at either merchant."""
    watcher = shop.platform.settlements
    await caught_up(watcher)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    await pay_directly(shop, anvil, PAYER, request, to=other_shop.wallet)
    found = await watch_once(watcher)
    assert (found.scanned_blocks, found.settlements, found.credits) == (2, 0, 0)  # mint, payment
    assert await settlements_of(shop, invoice.id) == []
    assert await credits_of(shop) == []
    assert await credits_of(other_shop) == []
    assert await shop.usdc.balance(other_shop.wallet) == 500_000
    await final(shop)
    assert await other_shop.balance("usdc_received") == "0.000000"


async def test_a_reorg_before_finality_unsees_the_payment_and_its_credit(
    shop: Shop, anvil: Anvil
) -> None:
    watcher = shop.platform.settlements
    await caught_up(watcher)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    snapshot = await shop.usdc.snapshot()
    await pay_directly(shop, anvil, PAYER, request)
    await pay_directly(shop, anvil, OTHER_PAYER, request)  # the same request twice: a credit
    found = await watch_once(watcher)
    assert (found.settlements, found.credits) == (1, 1)

    await shop.usdc.revert(snapshot)
    await shop.usdc.mine(5)  # the other branch grows past the vanished blocks
    rolled = await watch_once(watcher)
    assert (rolled.forgotten, rolled.settlements, rolled.credits) == (2, 0, 0)
    assert await settlements_of(shop, invoice.id) == []
    assert await credits_of(shop) == []
    await final(shop)
    assert await shop.balance("usdc_received") == "0.000000"

    # Paid again on the new branch: seen again, and it settles.
    transaction = await pay_directly(shop, anvil, PAYER, request)
    assert (await watch_once(watcher)).settlements == 1
    await shop.settle()
    [confirmed] = await settlements_of(shop, invoice.id)
    assert (confirmed.status, confirmed.transaction_hash) == (
        pb.SETTLEMENT_STATUS_CONFIRMED,
        transaction,
    )
    assert await shop.balance("usdc_received") == "0.500000"


async def test_the_scan_goes_range_by_range_from_the_cursor_and_a_range_read_again_adds_nothing(
    shop: Shop, anvil: Anvil, db: asyncpg.Connection
) -> None:
    settlements = shop.platform.settlements
    watcher = replace(
        settlements, settings=settlements.settings.model_copy(update={"watcher_max_blocks": 2})
    )
    await caught_up(watcher)
    start = await db.fetchval(
        "SELECT next_block FROM settlement.watcher_cursors WHERE token_address = $1",
        settlements.usdc.token,
    )
    invoices = [await shop.open_invoice("0.5") for _ in range(3)]
    for invoice in invoices:  # 2 blocks each: the mint, then the payment
        await pay_directly(shop, anvil, PAYER, await request_of(shop, invoice.id))
    head = await shop.usdc.w3.eth.block_number
    assert head == start + 5

    passes = [await watch_once(watcher) for _ in range(4)]
    assert [(p.scanned_blocks, p.settlements) for p in passes] == [(2, 1), (2, 1), (2, 1), (0, 0)]
    assert (
        await db.fetchval(
            "SELECT next_block FROM settlement.watcher_cursors WHERE token_address = $1",
            settlements.usdc.token,
        )
        == head + 1
    )

    # As after a crash between the write and its commit: the cursor back where it was.
    await db.execute(
        "UPDATE settlement.watcher_cursors SET next_block = $1 WHERE token_address = $2",
        start,
        settlements.usdc.token,
    )
    await caught_up(settlements)
    found = [await settlements_of(shop, invoice.id) for invoice in invoices]
    assert [len(settled) for settled in found] == [1, 1, 1]
    assert await credits_of(shop) == []

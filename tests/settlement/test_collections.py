"""Auto-pay on anvil: a subscriber's signed mandate relayed by the collector, each finalized
invoice of the subscriber collected under it exactly once, a collection that would fail refused
with its reason before any gas is spent and tried again on the schedule, and a schedule that
stops once the invoice is paid another way."""

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from web3.types import TxParams, Wei

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack import mandate_signature
from devstack.chain import Anvil
from devstack.mandates import Mandates
from service_kit.proto_time import to_timestamp
from settlement_svc.domain.collections import (
    Collection,
    CollectionAttempt,
    CollectionFailure,
    CollectionStatus,
)
from settlement_svc.service_layer.collections import CollectPass, collect_due
from settlement_svc.service_layer.mandate_events import refresh_mandates
from settlement_svc.service_layer.relay import outbox_relay
from tests.conftest import COLLECTOR_ACCOUNT, CONFIRMATIONS, field_violation
from tests.settlement.conftest import Shop

PAYER = 5
CAP = 2_000_000  # 2 USDC a period
MONTH = 30 * 24 * 3600
YEAR = 365 * 24 * 3600


async def signed_mandate(
    shop: Shop, anvil: Anvil, mandates: Mandates, signer: int = PAYER, lasting: int = YEAR
) -> tuple[dict[str, Any], str]:
    """A mandate of PAYER for the merchant's payout wallet for `lasting` seconds, signed by
    `signer`."""
    now = max(await shop.usdc.block_time(), int(shop.platform.clock.now().timestamp()))
    payer = anvil.accounts[PAYER]
    message = {
        "payer": payer,
        "merchant": shop.wallet,
        "cap": CAP,
        "period": MONTH,
        "expiry": now + lasting,
        "nonce": await mandates.nonce(payer),
        "deadline": now + 3600,
    }
    key = anvil.private_keys[signer]
    return message, mandate_signature.sign(key, 31337, mandates.address, message)


def create_request(
    subscription_id: str, message: dict[str, Any], signature: str
) -> pb.CreateMandateRequest:
    return pb.CreateMandateRequest(
        subscription_id=subscription_id,
        payer_wallet_address=message["payer"],
        cap_base_units=message["cap"],
        period_seconds=message["period"],
        expire_time=to_timestamp(datetime.fromtimestamp(message["expiry"], UTC)),
        deadline=to_timestamp(datetime.fromtimestamp(message["deadline"], UTC)),
        signature=signature,
    )


async def enrol(
    shop: Shop, anvil: Anvil, mandates: Mandates, subscription_id: str, *, funds: int
) -> pb.Mandate:
    """The payer holds `funds`, approves the contract, signs a mandate for the merchant's payout
    wallet; the platform relays it and sees the contract hold it."""
    payer = anvil.accounts[PAYER]
    await shop.usdc.mint(payer, funds, shop.minter)
    approve = shop.usdc.contract.functions.approve(mandates.address, 10**12)
    await shop.usdc.w3.eth.wait_for_transaction_receipt(await approve.transact({"from": payer}))
    message, signature = await signed_mandate(shop, anvil, mandates)
    created = await shop.platform.stub.CreateMandate(
        create_request(subscription_id, message, signature), metadata=shop.metadata
    )
    assert created.status == pb.MANDATE_STATUS_PENDING
    assert await follow_mandates(shop) == 1
    return await mandate_of(shop, subscription_id)


async def follow_mandates(shop: Shop) -> int:
    """Mines the confirmations of what the contract did, then follows its logs up to the newest
    final block; answers how many mandates moved."""
    await shop.usdc.mine(CONFIRMATIONS - 1)
    moved = 0
    while found := await refresh_mandates(shop.platform.settlements):
        moved += found.changed
    return moved


async def mandate_of(shop: Shop, subscription_id: str) -> pb.Mandate:
    return await shop.platform.stub.GetMandate(
        pb.GetMandateRequest(subscription_id=subscription_id), metadata=shop.metadata
    )


async def subscriber(shop: Shop) -> tuple[ipb.Plan, ipb.Subscription]:
    plan = await shop.merchant.plan(pricing_type=ipb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    return plan, await shop.merchant.subscribe(plan)


async def finalized(
    shop: Shop, plan: ipb.Plan, subscription: ipb.Subscription, amount: str
) -> ipb.Invoice:
    """An invoice of the subscription, recorded by the ledger (which schedules its collection)."""
    invoice = await shop.merchant.stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=subscription.id, payment_plan_id=plan.id, amount=amount
        ),
        metadata=shop.metadata,
    )
    await shop.merchant.relay()
    return invoice


async def collector_nonce(shop: Shop, anvil: Anvil) -> int:
    collector = shop.usdc.w3.to_checksum_address(anvil.accounts[COLLECTOR_ACCOUNT])
    return int(await shop.usdc.w3.eth.get_transaction_count(collector))


async def collection_of(shop: Shop, invoice_id: str) -> tuple[Collection, list[CollectionAttempt]]:
    async with shop.platform.settlements.unit_of_work() as uow:
        found = await uow.collections.of_invoice(shop.merchant.merchant_id, invoice_id)
        assert found is not None
        return found, list(await uow.collections.attempts(found.id))


async def relay_settlement_outbox(shop: Shop) -> None:
    relay = outbox_relay(shop.platform.settlements)
    while await relay.relay_once():
        pass
    await shop.merchant.relay()


async def subscription_status(shop: Shop, subscription_id: str) -> ipb.SubscriptionStatus.ValueType:
    found = await shop.merchant.stub.GetSubscription(
        ipb.GetSubscriptionRequest(id=subscription_id), metadata=shop.metadata
    )
    return found.status


async def invoice_status(shop: Shop, invoice_id: str) -> ipb.InvoiceStatus.ValueType:
    found = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice_id), metadata=shop.metadata
    )
    return found.status


async def test_a_finalized_invoice_is_collected_once_under_the_mandate(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    plan, subscription = await subscriber(shop)
    payer = anvil.accounts[PAYER]
    held = await shop.usdc.balance(payer)
    mandate = await enrol(shop, anvil, mandates, subscription.id, funds=5_000_000)
    assert (mandate.status, mandate.cap, mandate.cap_base_units) == (
        pb.MANDATE_STATUS_ACTIVE,
        "2.000000",
        "2000000",
    )
    assert (mandate.payer_wallet_address, mandate.merchant_wallet_address) == (payer, shop.wallet)
    assert (mandate.user_id, mandate.period_seconds) == (subscription.user_id, MONTH)

    invoice = await finalized(shop, plan, subscription, "1.25")
    assert await collect_due(shop.platform.settlements) == CollectPass(sent=1)
    assert await collect_due(shop.platform.settlements) == CollectPass()
    await shop.settle()

    assert await invoice_status(shop, invoice.id) == ipb.INVOICE_STATUS_PAID
    assert await shop.usdc.balance(shop.wallet) == 1_250_000
    assert await shop.usdc.balance(payer) == held + 5_000_000 - 1_250_000
    collection, attempts = await collection_of(shop, invoice.id)
    assert collection.status is CollectionStatus.SENT
    settled = await shop.get(collection.settlement_id)
    assert (settled.status, settled.origin, settled.amount_paid) == (
        pb.SETTLEMENT_STATUS_CONFIRMED,
        pb.SETTLEMENT_ORIGIN_MANDATE,
        "1.250000",
    )
    assert [(a.number, a.failure) for a in attempts] == [(1, None)]
    assert await mandates.available(payer, shop.wallet) == CAP - 1_250_000
    assert await shop.balance("usdc_received") == "1.250000"
    assert await shop.balance(f"receivable:{invoice.user_id}") == "0.000000"


async def test_a_collection_that_would_fail_costs_no_gas_and_is_tried_again_on_schedule(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    plan, subscription = await subscriber(shop)
    await enrol(shop, anvil, mandates, subscription.id, funds=0)
    payer = anvil.accounts[PAYER]
    spent = await shop.usdc.balance(payer)
    invoice = await finalized(shop, plan, subscription, "1.5")
    sent_before = await collector_nonce(shop, anvil)
    first_failure = shop.platform.clock.now()
    await shop.usdc.contract.functions.transfer(shop.minter, spent).transact({"from": payer})

    assert await collect_due(shop.platform.settlements) == CollectPass(failed=1)
    assert await collector_nonce(shop, anvil) == sent_before
    _, attempts = await collection_of(shop, invoice.id)
    assert [(a.number, a.failure, a.detail, a.next_attempt_time) for a in attempts] == [
        (
            1,
            CollectionFailure.INSUFFICIENT_BALANCE,
            "1500000 base units due, the payer holds 0",
            first_failure + timedelta(hours=1),
        )
    ]
    # Invoicing duns: the attempt on the invoice, the subscription PAST_DUE.
    await relay_settlement_outbox(shop)
    dunned = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    [reported] = dunned.payment_attempts
    assert (reported.number, reported.reason, reported.detail) == (
        1,
        ipb.PAYMENT_FAILURE_REASON_INSUFFICIENT_BALANCE,
        "1500000 base units due, the payer holds 0",
    )
    assert reported.next_attempt_time.ToDatetime(UTC) == first_failure + timedelta(hours=1)
    assert (await subscription_status(shop, subscription.id)) == ipb.SUBSCRIPTION_STATUS_PAST_DUE
    # Not due again before the schedule says.
    assert await collect_due(shop.platform.settlements) == CollectPass()

    await shop.usdc.mint(payer, 1_500_000, shop.minter)  # the subscriber tops up
    shop.platform.clock.advance(timedelta(hours=1))
    assert await collect_due(shop.platform.settlements) == CollectPass(sent=1)
    await shop.settle()
    assert await invoice_status(shop, invoice.id) == ipb.INVOICE_STATUS_PAID
    assert await shop.usdc.balance(shop.wallet) == 1_500_000
    _, attempts = await collection_of(shop, invoice.id)
    assert [(a.number, a.failure) for a in attempts] == [
        (1, CollectionFailure.INSUFFICIENT_BALANCE),
        (2, None),
    ]
    assert (await subscription_status(shop, subscription.id)) == ipb.SUBSCRIPTION_STATUS_ACTIVE


async def test_a_revoked_mandate_collects_nothing_and_a_new_one_collects_the_next_attempt(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    plan, subscription = await subscriber(shop)
    await enrol(shop, anvil, mandates, subscription.id, funds=3_000_000)
    payer = anvil.accounts[PAYER]
    invoice = await finalized(shop, plan, subscription, "1")
    await mandates.revoke(payer, shop.wallet)

    assert await collect_due(shop.platform.settlements) == CollectPass(failed=1)
    _, attempts = await collection_of(shop, invoice.id)
    assert [(a.failure, a.detail) for a in attempts] == [
        (CollectionFailure.MANDATE_REVOKED, "the payer revoked the mandate")
    ]
    assert await follow_mandates(shop) == 1
    assert (await mandate_of(shop, subscription.id)).status == pb.MANDATE_STATUS_REVOKED
    assert await shop.usdc.balance(shop.wallet) == 0

    # A new mandate: the next attempt, on schedule, collects under it.
    renewed = await enrol(shop, anvil, mandates, subscription.id, funds=0)
    assert renewed.status == pb.MANDATE_STATUS_ACTIVE
    shop.platform.clock.advance(timedelta(hours=1))
    assert await collect_due(shop.platform.settlements) == CollectPass(sent=1)
    await shop.settle()
    assert await invoice_status(shop, invoice.id) == ipb.INVOICE_STATUS_PAID
    assert await shop.usdc.balance(shop.wallet) == 1_000_000


async def test_an_invoice_above_the_cap_is_not_collected(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    plan, subscription = await subscriber(shop)
    await enrol(shop, anvil, mandates, subscription.id, funds=3_000_000)
    invoice = await finalized(shop, plan, subscription, "2.000001")
    assert await collect_due(shop.platform.settlements) == CollectPass(failed=1)
    _, attempts = await collection_of(shop, invoice.id)
    assert [(a.failure, a.detail) for a in attempts] == [
        (
            CollectionFailure.CAP_EXCEEDED,
            "2000001 base units due, 2000000 left under the cap this period",
        )
    ]


async def test_a_voided_invoice_stops_its_collection(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    plan, subscription = await subscriber(shop)
    await enrol(shop, anvil, mandates, subscription.id, funds=3_000_000)
    invoice = await finalized(shop, plan, subscription, "1")
    await shop.merchant.stub.VoidInvoice(
        ipb.VoidInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    sent_before = await collector_nonce(shop, anvil)
    assert await collect_due(shop.platform.settlements) == CollectPass(stopped=1)
    collection, _ = await collection_of(shop, invoice.id)
    assert collection.status is CollectionStatus.DONE
    assert await collector_nonce(shop, anvil) == sent_before


async def test_a_bad_mandate_signature_is_refused_before_anything_is_sent(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    _, subscription = await subscriber(shop)
    # Signed by another wallet than the payer's.
    message, signature = await signed_mandate(shop, anvil, mandates, signer=PAYER + 1)
    sent_before = await collector_nonce(shop, anvil)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await shop.platform.stub.CreateMandate(
            create_request(subscription.id, message, signature), metadata=shop.metadata
        )
    assert (refused.value.code(), field_violation(refused.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "signature",
    )
    assert "invalid signature" in (refused.value.details() or "")
    assert await collector_nonce(shop, anvil) == sent_before
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await mandate_of(shop, subscription.id)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_collection_whose_transaction_reverts_on_chain_is_due_again_on_schedule(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    plan, subscription = await subscriber(shop)
    await enrol(shop, anvil, mandates, subscription.id, funds=3_000_000)
    payer = anvil.accounts[PAYER]
    held = await shop.usdc.balance(payer)
    invoice = await finalized(shop, plan, subscription, "1.5")
    w3 = shop.usdc.w3
    await w3.provider.make_request("evm_setAutomine", [False])
    try:
        sent_at = shop.platform.clock.now()
        assert await collect_due(shop.platform.settlements) == CollectPass(sent=1)
        # Before it is mined the payer moves everything away, paying more for gas: the
        # collection passed its checks, and reverts on chain.
        price = 2 * int(await w3.eth.gas_price)
        transfer = shop.usdc.contract.functions.transfer(shop.minter, held)
        await transfer.transact(TxParams({"from": payer, "gasPrice": Wei(price), "gas": 100_000}))
        await shop.usdc.mine(1)
    finally:
        await w3.provider.make_request("evm_setAutomine", [True])
    await shop.settle()

    collection, attempts = await collection_of(shop, invoice.id)
    failed = await shop.get(collection.settlement_id)
    assert (failed.status, failed.failure_reason) == (
        pb.SETTLEMENT_STATUS_FAILED,
        pb.FAILURE_REASON_REVERTED,
    )
    assert (collection.status, collection.failures) == (CollectionStatus.DUE, 1)
    assert [(a.number, a.failure, a.detail) for a in attempts] == [
        (1, CollectionFailure.REVERTED, "the transaction reverted")
    ]
    assert attempts[0].next_attempt_time == sent_at + timedelta(hours=1)
    assert await invoice_status(shop, invoice.id) == ipb.INVOICE_STATUS_OPEN
    assert (await subscription_status(shop, subscription.id)) == ipb.SUBSCRIPTION_STATUS_PAST_DUE
    assert await shop.usdc.balance(shop.wallet) == 0

    # The payer holds funds again: the next attempt, on schedule, collects once.
    await shop.usdc.mint(payer, 1_500_000, shop.minter)
    shop.platform.clock.advance(timedelta(hours=1))
    # (The pass may also meet other tests' collections due by now.)
    await collect_due(shop.platform.settlements)
    assert (await collection_of(shop, invoice.id))[0].status is CollectionStatus.SENT
    await shop.settle()
    assert await invoice_status(shop, invoice.id) == ipb.INVOICE_STATUS_PAID
    assert await shop.usdc.balance(shop.wallet) == 1_500_000
    assert await shop.usdc.balance(payer) == 0
    _, attempts = await collection_of(shop, invoice.id)
    assert [(a.number, a.failure) for a in attempts] == [(1, CollectionFailure.REVERTED), (2, None)]

"""Auto top-up under a mandate, on anvil: setting it with no credits invoices a top-up at once,
the mandate collects it, its credits pay the next invoice, and the balance they leave below the
threshold invoices and collects the next top-up: credits bought and burnt down with nobody in
the loop, each top-up paid once."""

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil
from devstack.mandates import Mandates
from settlement_svc.service_layer.collections import CollectPass, collect_due
from tests.settlement.conftest import Shop
from tests.settlement.test_collections import (
    CAP,
    PAYER,
    enrol,
    finalized,
    relay_settlement_outbox,
    subscriber,
)


async def top_ups(shop: Shop, subscription: ipb.Subscription) -> list[ipb.Invoice]:
    return [i for i in await shop.merchant.invoices(subscription) if i.top_up]


async def collected(shop: Shop) -> None:
    """The invoices recorded, one collection sent and confirmed, and both outboxes relayed."""
    await shop.merchant.relay()
    assert await collect_due(shop.platform.settlements) == CollectPass(sent=1)
    await shop.settle()
    await relay_settlement_outbox(shop)


async def test_credits_are_bought_through_the_mandate_whenever_they_run_low(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    plan, subscription = await subscriber(shop)
    payer = anvil.accounts[PAYER]
    await enrol(shop, anvil, mandates, subscription.id, funds=5_000_000)
    held = await shop.usdc.balance(payer)

    await shop.merchant.stub.SetAutoTopUp(
        ipb.SetAutoTopUpRequest(
            subscription_id=subscription.id, enabled=True, threshold="0.5", amount="0.75"
        ),
        metadata=shop.metadata,
    )
    [first] = await top_ups(shop, subscription)
    assert (first.status, first.amount) == (ipb.INVOICE_STATUS_OPEN, "0.750000")
    await collected(shop)

    # 0.75 of credits: above the threshold, so no other top-up.
    assert [i.status for i in await top_ups(shop, subscription)] == [ipb.INVOICE_STATUS_PAID]
    # The next invoice is paid by the credits, which leaves 0.25: the next top-up follows.
    invoice = await finalized(shop, plan, subscription, "0.5")
    assert (invoice.status, invoice.credits_applied) == (ipb.INVOICE_STATUS_PAID, "0.500000")
    await relay_settlement_outbox(shop)
    await collected(shop)

    bought = await top_ups(shop, subscription)
    assert [(i.status, i.amount) for i in bought] == [(ipb.INVOICE_STATUS_PAID, "0.750000")] * 2
    for top_up in bought:
        settled = await shop.get(top_up.settlement_id)
        assert (settled.origin, settled.amount_paid) == (
            pb.SETTLEMENT_ORIGIN_MANDATE,
            "0.750000",
        )
    grants = await shop.platform.stub.ListCreditGrants(
        pb.ListCreditGrantsRequest(user_id=subscription.user_id), metadata=shop.metadata
    )
    assert sorted((g.source, g.reference, g.remaining) for g in grants.credit_grants) == sorted(
        [
            (pb.CREDIT_SOURCE_TOP_UP, bought[0].id, "0.250000"),
            (pb.CREDIT_SOURCE_TOP_UP, bought[1].id, "0.750000"),
        ]
    )
    found = await shop.platform.stub.GetCreditBalance(
        pb.GetCreditBalanceRequest(user_id=subscription.user_id), metadata=shop.metadata
    )
    assert found.balance == "1.000000"
    # Exactly the two top-ups left the payer's wallet, for the merchant's, within the cap.
    assert await shop.usdc.balance(payer) == held - 1_500_000
    assert await shop.usdc.balance(shop.wallet) == 1_500_000
    assert await mandates.available(payer, shop.wallet) == CAP - 1_500_000
    assert await shop.balance("revenue") == "-0.500000"
    assert await shop.balance("top_ups") == "0.000000"
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    assert list(report.differences) == []

"""An upgrade of a fee paid up front, invoiced at once (ALWAYS_INVOICE), collected under the
subscriber's auto-pay mandate on anvil with nobody in the loop (issue 18): the invoice is paid
once, by a MANDATE settlement of its amount, and the payer's USDC falls by exactly that."""

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil
from devstack.mandates import Mandates
from settlement_svc.service_layer.collections import collect_due
from tests.settlement.conftest import Shop
from tests.settlement.test_collections import PAYER, enrol, relay_settlement_outbox

MICRO = Decimal("0.000001")


def usdc(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(MICRO, ROUND_HALF_EVEN)


async def test_an_upgrade_invoiced_at_once_is_collected_under_the_mandate(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    service = await shop.merchant.service()
    basic, pro = [
        await shop.merchant.plan(
            service_id=service.id,
            name=name,
            pricing_type=ipb.PRICING_TYPE_FIXED_RECURRING,
            amount=fee,
        )
        for name, fee in (("Basic", "1"), ("Pro", "2.5"))
    ]
    subscription = await shop.merchant.subscribe(basic)
    # A day and a half into the period (its own time): two started days are Basic's.
    subscription = await shop.merchant.advance(subscription, timedelta(hours=36))
    await enrol(shop, anvil, mandates, subscription.id, funds=5_000_000)
    payer = anvil.accounts[PAYER]
    held = await shop.usdc.balance(payer)

    changed = await shop.merchant.stub.ChangeSubscriptionPlan(
        ipb.ChangeSubscriptionPlanRequest(
            id=subscription.id,
            plan_id=pro.id,
            proration_behavior=ipb.PRORATION_BEHAVIOR_ALWAYS_INVOICE,
        ),
        metadata=shop.metadata,
    )

    start = changed.subscription.current_period_start.ToDatetime()
    days = (changed.subscription.current_period_end.ToDatetime() - start).days
    left = Fraction(days - 2, days)
    owed = usdc(Fraction(5, 2) * left) - usdc(left)
    invoice = changed.invoice
    assert (invoice.status, Decimal(invoice.amount)) == (ipb.INVOICE_STATUS_OPEN, owed)
    # Collected: recorded by the ledger, sent under the mandate, confirmed, relayed back. (The
    # pass may also retry another test's collection that fell due: only this invoice counts.)
    await shop.merchant.relay()
    assert (await collect_due(shop.platform.settlements)).sent >= 1
    await shop.settle()
    await relay_settlement_outbox(shop)

    paid = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    assert paid.status == ipb.INVOICE_STATUS_PAID
    settled = await shop.get(paid.settlement_id)
    assert (settled.origin, Decimal(settled.amount_paid)) == (pb.SETTLEMENT_ORIGIN_MANDATE, owed)
    assert held - await shop.usdc.balance(payer) == int(owed / MICRO)

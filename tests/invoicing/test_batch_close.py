"""The scheduler closes periods in batches: each invoice exact, each period invoiced once."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from invoicing_svc import bootstrap
from invoicing_svc.service_layer.period_close import close_due_periods
from invoicing_svc.service_layer.unit_of_work import Invoicing
from service_kit.clock import ManualClock
from tests.invoicing.conftest import Merchant
from tests.invoicing.test_billing_flows import MONTH_AND_GRACE
from tests.invoicing.test_invoices import retempo_invoice

WEBHOOKS_OF_INVOICES = """
    SELECT payload->>'type' AS type, count(*) AS messages FROM invoicing.outbox
    WHERE merchant_id = $1 AND topic = 'webhook.event' AND payload->>'type' LIKE 'invoice.%'
    GROUP BY 1 ORDER BY 1
"""


@pytest.fixture
async def later_scheduler(
    invoicing: Invoicing, billing_clock: ManualClock
) -> AsyncIterator[Invoicing]:
    """Another invoicing replica whose clock reads a month and the grace window later, so the
    periods of these tests are due without moving the clock every other test shares."""
    replica = bootstrap.build(
        invoicing.settings, clock=ManualClock(billing_clock.now() + MONTH_AND_GRACE)
    )
    yield replica
    await bootstrap.close(replica)


async def test_a_batch_close_prices_each_subscription_exactly(
    merchant: Merchant, later_scheduler: Invoicing, db: asyncpg.Connection
) -> None:
    plan = await merchant.plan(
        pricing_type=pb.PRICING_TYPE_USAGE_BASED,
        charges=[
            pb.UsageCharge(
                event_key="tokens",
                model=pb.CHARGE_MODEL_PACKAGE,
                unit_price="0.04",
                package_size="1000",
            ),
            pb.UsageCharge(
                event_key="api_call",
                model=pb.CHARGE_MODEL_PER_UNIT,
                unit_price="0.000003",
                included_quantity="10",
            ),
        ],
    )
    heavy, light, idle, ending, invoiced = [await merchant.subscribe(plan) for _ in range(5)]
    await merchant.record(heavy, "tokens", "2500001")
    await merchant.record(heavy, "api_call", "12.5")
    await merchant.record(light, "tokens", "999")
    await merchant.record(ending, "tokens", "1000")
    await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=ending.id, at_period_end=True), metadata=merchant.metadata
    )
    await retempo_invoice(
        merchant,
        subscription_id=invoiced.id,
        payment_plan_id=plan.id,
        amount="3",
        period_start=invoiced.current_period_start,
        period_end=invoiced.current_period_end,
    )

    assert await close_due_periods(later_scheduler, batch_size=2) >= 5

    billed = {
        subscription.id: [
            (invoice.amount, invoice.status, [line.amount for line in invoice.lines])
            for invoice in await merchant.invoices(subscription)
        ]
        for subscription in (heavy, light, idle, ending, invoiced)
    }
    # 2,501 packages of 0.04; 2.5 calls over the included 10 at 0.000003 = 0.0000075 -> 0.000008.
    assert billed[heavy.id] == [("100.040008", pb.INVOICE_STATUS_OPEN, ["100.040000", "0.000008"])]
    assert billed[light.id] == [("0.040000", pb.INVOICE_STATUS_OPEN, ["0.040000", "0.000000"])]
    assert billed[idle.id] == [("0.000000", pb.INVOICE_STATUS_PAID, ["0.000000", "0.000000"])]
    assert billed[ending.id] == [("0.040000", pb.INVOICE_STATUS_OPEN, ["0.040000", "0.000000"])]
    # The merchant's own invoice of the period stops the scheduler billing it.
    assert billed[invoiced.id] == [("3.000000", pb.INVOICE_STATUS_OPEN, ["3.000000"])]
    states = {
        s.id: s
        for s in (
            await merchant.stub.ListSubscriptions(
                pb.ListSubscriptionsRequest(), metadata=merchant.metadata
            )
        ).subscriptions
    }
    assert states[ending.id].status == pb.SUBSCRIPTION_STATUS_CANCELED
    for rolled in (heavy, light, idle, invoiced):
        assert states[rolled.id].status == pb.SUBSCRIPTION_STATUS_ACTIVE
        assert states[rolled.id].current_period_start == rolled.current_period_end
    # Each invoice, the merchant's own included, was announced created and finalized once; the
    # zero one also paid.
    assert [tuple(row) for row in await db.fetch(WEBHOOKS_OF_INVOICES, merchant.merchant_id)] == [
        ("invoice.created", 5),
        ("invoice.finalized", 5),
        ("invoice.paid", 1),
    ]


async def test_racing_schedulers_on_the_batch_path_invoice_each_period_once(
    merchant: Merchant, later_scheduler: Invoicing
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.5")
    subscriptions = [await merchant.subscribe(plan) for _ in range(6)]
    for units, subscription in enumerate(subscriptions, start=1):
        await merchant.record(subscription, "token_generated", str(units))

    closed = await asyncio.gather(
        close_due_periods(later_scheduler, batch_size=2),
        close_due_periods(later_scheduler, batch_size=2),
        close_due_periods(later_scheduler, batch_size=3),
    )

    assert sum(closed) >= 6
    invoices = [await merchant.invoices(subscription) for subscription in subscriptions]
    assert [[invoice.amount for invoice in found] for found in invoices] == [
        ["0.500000"],
        ["1.000000"],
        ["1.500000"],
        ["2.000000"],
        ["2.500000"],
        ["3.000000"],
    ]
    assert await close_due_periods(later_scheduler, batch_size=2) == 0


async def test_one_batch_bills_each_merchant_its_own_usage(
    merchant: Merchant, later_scheduler: Invoicing
) -> None:
    other = replace(merchant, merchant_id=f"{merchant.merchant_id}_other")
    subscriptions = []
    for owner, units in ((merchant, "3"), (other, "5")):
        plan = await owner.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
        subscription = await owner.subscribe(plan)
        await owner.record(subscription, "token_generated", units)
        subscriptions.append(subscription)

    assert await close_due_periods(later_scheduler) >= 2

    mine, theirs = subscriptions
    assert [i.amount for i in await merchant.invoices(mine)] == ["3.000000"]
    assert [i.amount for i in await other.invoices(theirs)] == ["5.000000"]
    assert await merchant.invoices(theirs) == []

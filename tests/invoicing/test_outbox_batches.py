"""Invoicing's outbox relay on the whole platform: the messages of two merchants and four topics
reach metering, settlement and the webhook deliveries in one batch call per topic and merchant,
and a message naming what does not exist is retried alone while its batch is delivered."""

import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from billing.invoicing.v1 import invoicing_pb2 as pb
from devstack.postgres import free_port
from invoicing_svc.service_layer.relay import outbox_relay
from invoicing_svc.service_layer.unit_of_work import (
    POST_INVOICE,
    PUSH_INVOICE,
    PUSH_SUBSCRIPTION,
    WEBHOOK_EVENT,
)
from invoicing_svc.service_layer.webhooks import deliver_due_webhooks
from tests.conftest import Platform
from tests.invoicing.conftest import Merchant
from tests.invoicing.receiver import Receiver
from tests.kit.test_observability import Samples, scrape, value

METERING, SETTLEMENT = (
    "/billing.metering.v1.MeteringService/",
    "/billing.settlement.v1.SettlementService/",
)
# Each consumer RPC the relay may call, and the metrics port index of its service.
CONSUMER_RPCS = {
    f"{METERING}BatchUpsertSubscriptionStates": 0,
    f"{METERING}UpsertSubscriptionState": 0,
    f"{METERING}BatchUpsertInvoiceReferences": 0,
    f"{METERING}UpsertInvoiceReference": 0,
    f"{SETTLEMENT}BatchRecordInvoices": 2,
    f"{SETTLEMENT}RecordInvoice": 2,
}


@dataclass
class Shop:
    merchant: Merchant
    plan: pb.Plan
    subscriptions: list[pb.Subscription]


async def consumer_calls(platform: Platform) -> dict[str, float]:
    ports = {index: await scrape(platform.metrics_ports[index]) for index in (0, 2)}
    return {rpc: _ok(ports[index], rpc) for rpc, index in CONSUMER_RPCS.items()}


def _ok(samples: Samples, rpc: str) -> float:
    service = "metering_svc" if rpc.startswith(METERING) else "settlement_svc"
    return value(samples, "grpc_requests_total", service=service, method=rpc, code="OK")


async def shop(platform: Platform, name: str, hooks: str) -> Shop:
    """A webhook endpoint (at `hooks`) for every event and three subscriptions, relayed."""
    merchant = Merchant(platform.invoicing, platform.invoicing_stub, platform.metering_stub, name)
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.00001")
    await merchant.stub.CreateWebhookEndpoint(
        pb.CreateWebhookEndpointRequest(endpoint=pb.WebhookEndpoint(url=hooks, event_types=["*"])),
        metadata=merchant.metadata,
    )
    return Shop(merchant, plan, [await merchant.subscribe(plan) for _ in range(3)])


async def leave_messages(shop: Shop) -> list[pb.Invoice]:
    """Left in the outbox: an invoice of 1.5 for each subscription, the first one voided, and
    the last subscription canceled (which invoices its period, 0 without usage). Returns the
    merchant's invoices."""
    stub, md = shop.merchant.stub, shop.merchant.metadata
    invoices = [
        await stub.CreateInvoice(
            pb.CreateInvoiceRequest(
                subscription_id=s.id, payment_plan_id=shop.plan.id, amount="1.5"
            ),
            metadata=md,
        )
        for s in shop.subscriptions
    ]
    await stub.VoidInvoice(pb.VoidInvoiceRequest(id=invoices[0].id), metadata=md)
    await stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=shop.subscriptions[2].id), metadata=md
    )
    listed = await stub.ListInvoices(pb.ListInvoicesRequest(), metadata=md)
    return list(listed.invoices)


async def test_two_merchants_messages_are_delivered_once_in_a_batch_per_topic(
    platform: Platform, db: asyncpg.Connection
) -> None:
    relay = outbox_relay(platform.invoicing)
    receiver = Receiver(free_port())
    hooks = f"http://127.0.0.1:{receiver.port}/hooks"
    shops = [await shop(platform, f"mer_outbox_batches_{n}", hooks) for n in (1, 2)]
    while await relay.relay_once():  # what the set-up and earlier tests left
        pass
    merchants = [s.merchant.merchant_id for s in shops]
    mark = await db.fetchval("SELECT max(id) FROM invoicing.outbox")
    invoices = [await leave_messages(s) for s in shops]
    poison_id = await db.fetchval(
        "INSERT INTO invoicing.outbox (merchant_id, topic, payload, create_time, available_time)"
        " VALUES ($1, $2, $3, $4, $4) RETURNING id",
        merchants[0],
        PUSH_INVOICE,
        json.dumps({"invoice_id": "in_missing"}),
        platform.clock.now(),
    )
    pending = await db.fetch(
        "SELECT merchant_id, topic, count(*) FROM invoicing.outbox"
        " WHERE id > $1 AND delivered_time IS NULL GROUP BY 1, 2",
        mark,
    )
    # Per merchant: 4 invoices pushed (with the cancellation's), 5 posted (with the void), the
    # cancellation pushed, 11 webhook events; the first merchant also has the poison message.
    assert {(row["merchant_id"], row["topic"]): row["count"] for row in pending} == {
        (merchants[0], PUSH_INVOICE): 4 + 1,
        (merchants[0], POST_INVOICE): 5,
        (merchants[0], PUSH_SUBSCRIPTION): 1,
        (merchants[0], WEBHOOK_EVENT): 11,
        (merchants[1], PUSH_INVOICE): 4,
        (merchants[1], POST_INVOICE): 5,
        (merchants[1], PUSH_SUBSCRIPTION): 1,
        (merchants[1], WEBHOOK_EVENT): 11,
    }

    before = await consumer_calls(platform)
    delivered = await relay.relay_once()
    again = await relay.relay_once()
    after = await consumer_calls(platform)
    outcomes = await db.fetch(
        "SELECT id, attempts, delivered_time IS NOT NULL, last_error FROM invoicing.outbox"
        " WHERE id > $1",
        mark,
    )
    await db.execute("DELETE FROM invoicing.outbox WHERE id = $1", poison_id)

    assert (delivered, again) == (2 * 21, 0)
    assert Counter(tuple(row)[1:] for row in outcomes if row["id"] != poison_id) == {
        (1, True, None): 2 * 21
    }
    assert [tuple(row)[1:] for row in outcomes if row["id"] == poison_id] == [
        (1, False, "not found: in_missing")
    ]
    # A call per topic and merchant; the first merchant's invoice pushes failed as a batch
    # (before any call, on the missing invoice) and went one at a time.
    assert {rpc: after[rpc] - before[rpc] for rpc in CONSUMER_RPCS} == {
        f"{METERING}BatchUpsertSubscriptionStates": 2,
        f"{METERING}UpsertSubscriptionState": 0,
        f"{METERING}BatchUpsertInvoiceReferences": 1 + 4,
        f"{METERING}UpsertInvoiceReference": 0,
        f"{SETTLEMENT}BatchRecordInvoices": 2,
        f"{SETTLEMENT}RecordInvoice": 0,
    }

    for current, merchant_id, billed in zip(shops, merchants, invoices, strict=True):
        replicas = await db.fetch(
            "SELECT id, status FROM metering.subscriptions WHERE merchant_id = $1", merchant_id
        )
        canceled = current.subscriptions[2].id
        assert {row["id"]: row["status"] for row in replicas} == {
            s.id: "CANCELED" if s.id == canceled else "ACTIVE" for s in current.subscriptions
        }
        references = await db.fetch(
            "SELECT id FROM metering.invoice_references WHERE merchant_id = $1", merchant_id
        )
        assert sorted(row["id"] for row in references) == sorted(i.id for i in billed)
        posted = await db.fetch(
            "SELECT kind, reference FROM settlement.journal_transactions WHERE merchant_id = $1",
            merchant_id,
        )
        voided = [i.id for i in billed if i.status == pb.INVOICE_STATUS_VOID]
        charged = [i.id for i in billed if Decimal(i.amount) > 0]
        assert (len(voided), len(charged)) == (1, 3)
        assert sorted(tuple(row) for row in posted) == sorted(
            [("invoice", i) for i in charged] + [("invoice_void", i) for i in voided]
        )
    fanned_out = await db.fetch(
        "SELECT count(*), count(DISTINCT d.event_id) FROM invoicing.webhook_deliveries d"
        " JOIN invoicing.outbox o ON o.payload->>'id' = d.event_id"
        " WHERE o.id > $1 AND o.topic = $2",
        mark,
        WEBHOOK_EVENT,
    )
    assert [tuple(row) for row in fanned_out] == [(2 * 11, 2 * 11)]

    # The deliveries go out, so that none of this test's is left pending for later tests.
    with receiver:
        while await deliver_due_webhooks(platform.invoicing):
            pass
    statuses = await db.fetch(
        "SELECT status, count(*) FROM invoicing.webhook_deliveries WHERE merchant_id = ANY($1)"
        " GROUP BY 1",
        merchants,
    )
    # Per merchant: the 11 events above and the 6 of its three checkouts.
    assert {row["status"]: row["count"] for row in statuses} == {"SUCCEEDED": 2 * 17}
    assert len(receiver.received) == 2 * 17

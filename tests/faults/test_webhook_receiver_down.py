"""A merchant's webhook receiver down for hours of clock time: every delivery keeps being retried
(backoff capped at five minutes), and once the receiver is back every event arrives, exactly once
per webhook-id. Invoicing runs in-process on a manual clock, so hours pass in seconds; the
receiver is a real HTTP server on loopback, absent (connection refused) while down."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from itertools import pairwise

from billing.invoicing.v1 import invoicing_pb2 as pb
from devstack.postgres import free_port
from invoicing_svc.service_layer.webhooks import deliver_due_webhooks
from service_kit.clock import ManualClock
from service_kit.outbox import MAX_BACKOFF
from tests.faults.conftest import TEST_TIMEOUT_SECONDS
from tests.faults.load import report
from tests.invoicing.conftest import Merchant
from tests.invoicing.receiver import Receiver

DOWN_FOR = timedelta(hours=3)
STEP = timedelta(minutes=1)
EVENT_TYPES = [
    "checkout.session.completed",
    "invoice.created",
    "invoice.finalized",
    "subscription.created",
    "subscription.updated",
]


async def test_a_receiver_down_for_hours_gets_every_event_once_when_back(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        port = free_port()
        endpoint = await merchant.stub.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(
                endpoint=pb.WebhookEndpoint(url=f"http://127.0.0.1:{port}/hooks", event_types=["*"])
            ),
            metadata=merchant.metadata,
        )
        plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
        subscription = await merchant.subscribe(plan)
        await merchant.record(subscription, "token_generated", "50000")
        await merchant.advance(subscription, timedelta(days=31, hours=1))
        await merchant.relay()

        down_since = billing_clock.now()
        delivered_while_down = 0
        while billing_clock.now() - down_since < DOWN_FOR:
            delivered_while_down += await deliver_due_webhooks(merchant.invoicing)
            billing_clock.advance(STEP)
        back_at = billing_clock.now()
        with Receiver(port) as receiver:
            steps_to_drain = 0
            while len(receiver.received) < len(EVENT_TYPES):
                await deliver_due_webhooks(merchant.invoicing)
                billing_clock.advance(STEP)
                steps_to_drain += 1
                assert STEP * steps_to_drain <= MAX_BACKOFF + STEP
            # An hour more: nothing arrives a second time.
            for _ in range(60):
                billing_clock.advance(STEP)
                await deliver_due_webhooks(merchant.invoicing)

        deliveries = (
            await merchant.stub.ListWebhookDeliveries(
                pb.ListWebhookDeliveriesRequest(endpoint_id=endpoint.id),
                metadata=merchant.metadata,
            )
        ).deliveries
        failed_attempts = [d.attempt_count - 1 for d in deliveries]
        report(
            "webhook receiver down",
            {
                "down_for_clock_minutes": int(DOWN_FOR / timedelta(minutes=1)),
                "events": len(deliveries),
                "failed_attempts_per_event": sorted(failed_attempts),
                "received": len(receiver.received),
                "received_twice": len(receiver.received)
                - len({h["webhook-id"] for h, _ in receiver.received}),
                "clock_minutes_to_drain": steps_to_drain,
            },
        )
        assert delivered_while_down == 0
        assert sorted(d.event_type for d in deliveries) == EVENT_TYPES
        assert sorted(h["webhook-id"] for h, _ in receiver.received) == sorted(
            d.event_id for d in deliveries
        )
        # Retried all along: never more than the capped backoff (plus a step) between attempts.
        least_attempts = DOWN_FOR // (MAX_BACKOFF + STEP)
        for delivery in deliveries:
            assert delivery.status == pb.DELIVERY_STATUS_SUCCEEDED
            codes = [attempt.status_code for attempt in delivery.attempts]
            assert codes == [0] * (len(codes) - 1) + [204]
            assert len(codes) - 1 >= least_attempts
            times = [attempt.attempt_time.ToDatetime() for attempt in delivery.attempts]
            assert all(b - a <= MAX_BACKOFF + STEP for a, b in pairwise(times))
            assert times[-1] >= back_at.replace(tzinfo=None)

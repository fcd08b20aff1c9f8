"""Webhooks from the outbox to a real HTTP receiver on loopback, signed, retried, once each."""

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from standardwebhooks.webhooks import Webhook

from billing.invoicing.v1 import invoicing_pb2 as pb
from devstack.postgres import free_port
from invoicing_svc.service_layer.webhooks import deliver_due_webhooks
from service_kit.clock import ManualClock
from tests.conftest import field_violation
from tests.invoicing.conftest import Merchant
from tests.invoicing.receiver import Receiver


@pytest.fixture
def receiver_port() -> Iterator[int]:
    yield free_port()


async def test_a_receiver_down_for_a_while_gets_every_event_once_signed(
    merchant: Merchant, billing_clock: ManualClock, receiver_port: int
) -> None:
    endpoint = await merchant.stub.CreateWebhookEndpoint(
        pb.CreateWebhookEndpointRequest(
            endpoint=pb.WebhookEndpoint(
                url=f"http://127.0.0.1:{receiver_port}/hooks", event_types=["*"]
            )
        ),
        metadata=merchant.metadata,
    )
    assert endpoint.secret.startswith("whsec_")
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await merchant.subscribe(plan)
    await merchant.record(subscription, "token_generated", "50000")
    await merchant.advance(subscription, timedelta(days=31, hours=1))
    await merchant.relay()

    # Nobody listens yet: every attempt fails and is scheduled again.
    assert await deliver_due_webhooks(merchant.invoicing) == 0
    for _ in range(3):
        billing_clock.advance(timedelta(minutes=10))
        assert await deliver_due_webhooks(merchant.invoicing) == 0
    billing_clock.advance(timedelta(minutes=10))
    with Receiver(receiver_port) as receiver:
        while await deliver_due_webhooks(merchant.invoicing):
            pass
        billing_clock.advance(timedelta(minutes=10))
        assert await deliver_due_webhooks(merchant.invoicing) == 0

    deliveries = (
        await merchant.stub.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(endpoint_id=endpoint.id), metadata=merchant.metadata
        )
    ).deliveries
    types = sorted(d.event_type for d in deliveries)
    assert types == sorted(
        [
            "checkout.session.completed",
            "subscription.created",
            "invoice.created",
            "invoice.finalized",
            "subscription.updated",
        ]
    )
    assert all(
        d.status == pb.DELIVERY_STATUS_SUCCEEDED and d.attempt_count == 5 for d in deliveries
    )
    for delivery in deliveries:
        assert [a.status_code for a in delivery.attempts] == [0, 0, 0, 0, 204]
        assert "ConnectError" in delivery.attempts[0].error
    assert sorted(h["webhook-id"] for h, _ in receiver.received) == sorted(
        d.event_id for d in deliveries
    )
    verifier = Webhook(endpoint.secret)
    for headers, body in receiver.received:
        sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        assert headers["webhook-signature"] == verifier.sign(headers["webhook-id"], sent_at, body)
    invoice_event = next(json.loads(b) for _, b in receiver.received if '"invoice.finalized"' in b)
    assert invoice_event["data"]["amount"] == "0.500000"
    assert invoice_event["data"]["status"] == "INVOICE_STATUS_OPEN"


async def test_an_event_is_delivered_once_to_each_subscribed_endpoint(
    merchant: Merchant, receiver_port: int
) -> None:
    for event_types in (["invoice.paid"], ["subscription.created"], ["subscription.created"]):
        await merchant.stub.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(
                endpoint=pb.WebhookEndpoint(
                    url=f"http://127.0.0.1:{receiver_port}/", event_types=event_types
                )
            ),
            metadata=merchant.metadata,
        )
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    with Receiver(receiver_port) as receiver:
        await merchant.subscribe(plan)
        await merchant.relay()  # a second relay pass fans out nothing twice
        await asyncio.gather(
            deliver_due_webhooks(merchant.invoicing), deliver_due_webhooks(merchant.invoicing)
        )
    assert [json.loads(body)["type"] for _, body in receiver.received] == [
        "subscription.created"
    ] * 2
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 1


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        (pb.WebhookEndpoint(url="ftp://x", event_types=["*"]), "endpoint.url"),
        (pb.WebhookEndpoint(url="https://x.example", event_types=[]), "endpoint.event_types"),
        (
            pb.WebhookEndpoint(url="https://x.example", event_types=["invoice.eaten"]),
            "endpoint.event_types",
        ),
    ],
)
async def test_invalid_endpoints_are_rejected(
    merchant: Merchant, endpoint: pb.WebhookEndpoint, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.stub.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(endpoint=endpoint), metadata=merchant.metadata
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        field,
    )

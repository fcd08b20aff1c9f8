"""Invoicing and metering servers on loopback, sharing one manual clock, and a merchant helper."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2 as mpb
from billing.metering.v1 import metering_pb2_grpc
from invoicing_svc import bootstrap
from invoicing_svc.domain.webhooks import WebhookEvent
from invoicing_svc.service_layer.period_close import close_due_periods
from invoicing_svc.service_layer.relay import outbox_relay
from invoicing_svc.service_layer.unit_of_work import Invoicing
from invoicing_svc.settings import InvoicingSettings
from service_kit.clock import ManualClock
from service_kit.ids import new_id
from tests.conftest import (
    SECRETS_KEY,
    SERVICE_TOKEN,
    TEST_START,
    RunningMetering,
    field_violation,
    metering_server,
    service_channel,
)

GRACE = timedelta(hours=1)
_merchants = itertools.count(1)


@pytest.fixture(scope="session")
def billing_clock() -> ManualClock:
    """The time of both services in these tests; it only ever moves forward."""
    return ManualClock(TEST_START)


@pytest.fixture(scope="session")
async def billing_metering(
    database_url: str, billing_clock: ManualClock
) -> AsyncIterator[RunningMetering]:
    async with metering_server(database_url, billing_clock) as running:
        yield running


@pytest.fixture(scope="session")
async def invoicing(
    database_url: str, billing_clock: ManualClock, billing_metering: RunningMetering
) -> AsyncIterator[Invoicing]:
    settings = InvoicingSettings(
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        service_token=SERVICE_TOKEN,
        metering_address=f"127.0.0.1:{billing_metering.port}",
        late_event_grace=GRACE,
        test_clock_enabled=True,
        webhook_timeout_seconds=2,
        # The merchants' receivers in these tests listen on loopback, over plain http.
        webhook_allow_private_targets=True,
        webhook_allow_http=True,
        secrets_key=SECRETS_KEY,
    )
    service = bootstrap.build(settings, clock=billing_clock)
    yield service
    await bootstrap.close(service)


@pytest.fixture(scope="session")
async def invoicing_stub(
    invoicing: Invoicing,
) -> AsyncIterator[invoicing_pb2_grpc.InvoicingServiceAsyncStub]:
    running = await bootstrap.start(invoicing)
    channel = service_channel(running.port)
    yield invoicing_pb2_grpc.InvoicingServiceStub(channel)
    await channel.close()
    await running.stop(1)


@dataclass
class Merchant:
    """A fresh merchant driving both services through their gRPC APIs."""

    invoicing: Invoicing
    stub: invoicing_pb2_grpc.InvoicingServiceAsyncStub
    metering: metering_pb2_grpc.MeteringServiceAsyncStub
    merchant_id: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-merchant-id", self.merchant_id),)

    async def service(self, name: str = "AI Token API") -> pb.Service:
        return await self.stub.CreateService(
            pb.CreateServiceRequest(service=pb.Service(name=name)), metadata=self.metadata
        )

    async def plan(self, **fields: object) -> pb.Plan:
        service = await self.service()
        values: dict[str, object] = {
            "service_id": service.id,
            "name": "Pay as you go",
            "billing_interval": pb.BILLING_INTERVAL_MONTH,
        }
        values.update(fields)
        return await self.stub.CreatePlan(
            pb.CreatePlanRequest(plan=pb.Plan(**values)),  # type: ignore[arg-type]
            metadata=self.metadata,
        )

    async def checkout(self, plan: pb.Plan, user_id: str = "usr_b4e7f812") -> pb.CheckoutSession:
        return await self.stub.CreateCheckoutSession(
            pb.CreateCheckoutSessionRequest(
                session=pb.CheckoutSession(
                    plan_id=plan.id,
                    user_id=user_id,
                    success_url="https://merchant.example/ok",
                    cancel_url="https://merchant.example/cancel",
                )
            ),
            metadata=self.metadata,
        )

    async def subscribe(self, plan: pb.Plan) -> pb.Subscription:
        """Checkout completed (paid up front when the plan has a fee), state pushed to metering."""
        session = await self.checkout(plan)
        if Decimal(session.amount_due) > 0:
            await self.stub.CompleteCheckoutSession(
                pb.CompleteCheckoutSessionRequest(
                    id=session.id,
                    payment=pb.PaymentProof(
                        transaction_hash="0x" + "ab" * 32, payer_wallet_address="0x" + "12" * 20
                    ),
                ),
                metadata=self.metadata,
            )
            session = await self.stub.ConfirmCheckoutPayment(
                pb.ConfirmCheckoutPaymentRequest(id=session.id, settlement_id="stl_upfront"),
                metadata=self.metadata,
            )
        else:
            session = await self.stub.CompleteCheckoutSession(
                pb.CompleteCheckoutSessionRequest(id=session.id), metadata=self.metadata
            )
        await self.relay()
        return await self.stub.GetSubscription(
            pb.GetSubscriptionRequest(id=session.subscription_id), metadata=self.metadata
        )

    async def relay(self) -> None:
        """Delivers everything in the outbox (metering replicas, webhook fan-out)."""
        relay = outbox_relay(self.invoicing)
        while await relay.relay_once():
            pass

    async def webhook_endpoint(
        self, url: str, event_types: Sequence[str] = ("*",)
    ) -> pb.WebhookEndpoint:
        return await self.stub.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(
                endpoint=pb.WebhookEndpoint(url=url, event_types=event_types)
            ),
            metadata=self.metadata,
        )

    async def fan_out_webhooks(self, count: int, event_type: str = "invoice.paid") -> int:
        """`count` new events, fanned out to the endpoints as the outbox relay does. Returns
        how many deliveries they added."""
        events = [WebhookEvent(new_id("msg"), event_type, f'{{"n":{n}}}') for n in range(count)]
        async with self.invoicing.unit_of_work() as uow:
            added = await uow.webhooks.fan_out(self.merchant_id, events, self.invoicing.clock.now())
            await uow.commit()
        return added

    async def webhook_endpoints(self) -> dict[str, pb.WebhookEndpoint]:
        listed = await self.stub.ListWebhookEndpoints(
            pb.ListWebhookEndpointsRequest(), metadata=self.metadata
        )
        return {endpoint.id: endpoint for endpoint in listed.endpoints}

    async def deliveries(self, endpoint: pb.WebhookEndpoint) -> list[pb.WebhookDelivery]:
        listed = await self.stub.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(endpoint_id=endpoint.id), metadata=self.metadata
        )
        return list(listed.deliveries)

    async def record(self, subscription: pb.Subscription, event_key: str, quantity: str) -> None:
        response = await self.metering.RecordUsageEvent(
            mpb.RecordUsageEventRequest(
                event=mpb.UsageEventInput(
                    service_id=subscription.service_id,
                    subscription_id=subscription.id,
                    user_id=subscription.user_id,
                    event_key=event_key,
                    quantity=quantity,
                )
            ),
            metadata=self.metadata,
        )
        assert response.outcome == mpb.USAGE_EVENT_OUTCOME_ACCEPTED

    async def advance(self, subscription: pb.Subscription, step: timedelta) -> pb.Subscription:
        request = pb.AdvanceTestClockRequest(subscription_id=subscription.id)
        request.advance_by.FromTimedelta(step)
        return await self.stub.AdvanceTestClock(request, metadata=self.metadata)

    async def invoices(self, subscription: pb.Subscription) -> list[pb.Invoice]:
        response = await self.stub.ListInvoices(
            pb.ListInvoicesRequest(subscription_id=subscription.id), metadata=self.metadata
        )
        return list(response.invoices)

    async def close_periods(self) -> int:
        return await close_due_periods(self.invoicing)


@pytest.fixture
async def merchant(
    invoicing: Invoicing,
    invoicing_stub: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    billing_metering: RunningMetering,
) -> Merchant:
    return Merchant(invoicing, invoicing_stub, billing_metering.stub, f"mer_inv{next(_merchants)}")


async def outbox_mark(db: asyncpg.Connection) -> int:
    """The outbox's newest message id: `webhook_events` after it are the ones written since."""
    mark: int = await db.fetchval("SELECT coalesce(max(id), 0) FROM invoicing.outbox")
    return mark


async def webhook_events(
    db: asyncpg.Connection, merchant: Merchant, after: int
) -> list[dict[str, Any]]:
    """The merchant's webhook events ({type, data, ...}) written after the mark, in order."""
    rows = await db.fetch(
        "SELECT payload FROM invoicing.outbox WHERE merchant_id = $1"
        " AND topic = 'webhook.event' AND id > $2 ORDER BY id",
        merchant.merchant_id,
        after,
    )
    return [json.loads(row["payload"]) for row in rows]


async def refused(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    """The status and the field a refused call names."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), field_violation(caught.value)

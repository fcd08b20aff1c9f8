"""Invoicing's calls to metering and settlement say a callee's failure in invoicing's terms:
metering away is UNAVAILABLE (retry later), never invoicing's INTERNAL."""

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from devstack.postgres import free_port
from invoicing_svc import bootstrap
from invoicing_svc.settings import InvoicingSettings
from service_kit.clock import ManualClock
from tests.conftest import SECRETS_KEY, SERVICE_TOKEN, TEST_START, service_channel
from tests.invoicing.conftest import Merchant


async def test_metering_away_is_unavailable_not_internal(database_url: str) -> None:
    service = bootstrap.build(
        InvoicingSettings(
            database_url=database_url,
            grpc_port=0,
            metrics_port=0,
            service_token=SERVICE_TOKEN,
            # Nothing listens there.
            metering_address=f"127.0.0.1:{free_port()}",
            settlement_address=f"127.0.0.1:{free_port()}",
            metering_deadline_seconds=1,
            test_clock_enabled=True,
            secrets_key=SECRETS_KEY,
        ),
        clock=ManualClock(TEST_START),
    )
    running = await bootstrap.start(service)
    channel = service_channel(running.port)
    stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
    try:
        merchant = Merchant(service, stub, None, "mer_metering_away")  # type: ignore[arg-type]
        plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.01")
        session = await merchant.checkout(plan)
        started = await stub.CompleteCheckoutSession(
            pb.CompleteCheckoutSessionRequest(id=session.id), metadata=merchant.metadata
        )
        with pytest.raises(grpc.aio.AioRpcError) as advanced:
            await stub.AdvanceTestClock(
                pb.AdvanceTestClockRequest(
                    subscription_id=started.subscription_id, advance_by=Duration(seconds=3600)
                ),
                metadata=merchant.metadata,
            )
        with pytest.raises(grpc.aio.AioRpcError) as canceled:
            await stub.CancelSubscription(
                pb.CancelSubscriptionRequest(id=started.subscription_id),
                metadata=merchant.metadata,
            )
        # Metering must learn the end before it is promised: without it nothing changes.
        with pytest.raises(grpc.aio.AioRpcError) as pending:
            await stub.CancelSubscription(
                pb.CancelSubscriptionRequest(id=started.subscription_id, at_period_end=True),
                metadata=merchant.metadata,
            )
        unchanged = await stub.GetSubscription(
            pb.GetSubscriptionRequest(id=started.subscription_id), metadata=merchant.metadata
        )
    finally:
        await channel.close()
        await running.stop(0)
        await bootstrap.close(service)
    assert (unchanged.status, unchanged.cancel_at_period_end) == (
        pb.SUBSCRIPTION_STATUS_ACTIVE,
        False,
    )
    for refused in (advanced.value, canceled.value, pending.value):
        assert (refused.code(), refused.details()) == (
            grpc.StatusCode.UNAVAILABLE,
            "metering is unavailable (UNAVAILABLE); retry later",
        )

"""A subscription whose end is known (canceled at its period end) takes no event from then on,
and once canceled none of its events can be canceled any more: its final invoice billed them."""

from datetime import datetime, timedelta

import grpc
import pytest

from billing.metering.v1 import metering_pb2 as pb
from service_kit.clock import ManualClock
from service_kit.proto_time import to_timestamp
from tests.metering.conftest import Tenant, field_violation


def ending_state(
    tenant: Tenant, end: datetime, version: int, status: pb.SubscriptionStatus.ValueType
) -> pb.SubscriptionState:
    return tenant.state(status, version, end_time=to_timestamp(end))


async def test_events_from_the_subscriptions_end_on_are_rejected(
    tenant: Tenant, clock: ManualClock
) -> None:
    end = clock.now() + timedelta(minutes=2)
    stored = await tenant.stub.UpsertSubscriptionState(
        pb.UpsertSubscriptionStateRequest(
            state=ending_state(tenant, end, 2, pb.SUBSCRIPTION_STATUS_ACTIVE)
        ),
        metadata=tenant.metadata,
    )
    assert stored.end_time.ToDatetime().isoformat() == end.replace(tzinfo=None).isoformat()

    last = await tenant.record("1", occurred_at=end - timedelta(microseconds=1))
    assert last.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED
    for late in (end, end + timedelta(minutes=1)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tenant.record("10", occurred_at=late)
        assert (caught.value.code(), field_violation(caught.value), caught.value.details()) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "occurred_at",
            f"occurred_at {late.isoformat()} is too late: the subscription ends at "
            f"{end.isoformat()}",
        )
    batch = await tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(
            events=[tenant.event("100", occurred_at=end), tenant.event("1000")]
        ),
        metadata=tenant.metadata,
    )
    assert [(r.outcome, r.error.field) for r in batch.results] == [
        (pb.USAGE_EVENT_OUTCOME_REJECTED, "occurred_at"),
        (pb.USAGE_EVENT_OUTCOME_ACCEPTED, ""),
    ]
    found = await tenant.summary(tenant.period_start, tenant.period_end)
    assert (found["token_generated"].value, found["token_generated"].event_count) == ("1001", 2)


async def test_an_end_before_the_period_start_is_refused(tenant: Tenant) -> None:
    early = tenant.period_start - timedelta(microseconds=1)
    with pytest.raises(grpc.aio.AioRpcError) as single:
        await tenant.stub.UpsertSubscriptionState(
            pb.UpsertSubscriptionStateRequest(
                state=ending_state(tenant, early, 2, pb.SUBSCRIPTION_STATUS_ACTIVE)
            ),
            metadata=tenant.metadata,
        )
    with pytest.raises(grpc.aio.AioRpcError) as batch:
        await tenant.stub.BatchUpsertSubscriptionStates(
            pb.BatchUpsertSubscriptionStatesRequest(
                states=[ending_state(tenant, early, 2, pb.SUBSCRIPTION_STATUS_ACTIVE)]
            ),
            metadata=tenant.metadata,
        )
    assert [(e.code(), field_violation(e)) for e in (single.value, batch.value)] == [
        (grpc.StatusCode.INVALID_ARGUMENT, "state.end_time"),
        (grpc.StatusCode.INVALID_ARGUMENT, "states[0].end_time"),
    ]
    # Nothing stored: the subscription still has no end.
    accepted = await tenant.record("1", occurred_at=tenant.period_start + timedelta(days=1))
    assert accepted.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED


async def test_the_events_of_a_canceled_subscription_cannot_be_canceled(
    tenant: Tenant, clock: ManualClock
) -> None:
    recorded = await tenant.record("7")
    await tenant.stub.UpsertSubscriptionState(
        pb.UpsertSubscriptionStateRequest(
            state=ending_state(tenant, clock.now(), 2, pb.SUBSCRIPTION_STATUS_CANCELED)
        ),
        metadata=tenant.metadata,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.CancelUsageEvent(
            pb.CancelUsageEventRequest(id=recorded.event_id), metadata=tenant.metadata
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "id",
    )
    found = await tenant.summary(tenant.period_start, tenant.period_end)
    assert (found["token_generated"].value, found["token_generated"].event_count) == ("7", 1)

"""Every validation rule: the right status code, the offending field named, nothing stored."""

from datetime import timedelta

import asyncpg
import grpc
import pytest

from billing.metering.v1 import metering_pb2 as pb
from service_kit.clock import ManualClock
from service_kit.proto_time import to_timestamp
from tests.metering.conftest import Tenant, field_violation

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND


async def expect_rejection(
    tenant: Tenant, event: pb.UsageEventInput
) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.RecordUsageEvent(
            pb.RecordUsageEventRequest(event=event), metadata=tenant.metadata
        )
    return caught.value.code(), field_violation(caught.value)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"quantity": "-0.5"}, (INVALID, "quantity")),
        ({"quantity": "NaN"}, (INVALID, "quantity")),
        ({"quantity": "Infinity"}, (INVALID, "quantity")),
        ({"quantity": "1e400"}, (INVALID, "quantity")),
        ({"quantity": "1000000000000000"}, (INVALID, "quantity")),
        ({"quantity": "0.0000000000001"}, (INVALID, "quantity")),
        ({"quantity": "twelve"}, (INVALID, "quantity")),
        ({"quantity": ""}, (INVALID, "quantity")),
        ({"event_key": ""}, (INVALID, "event_key")),
        ({"event_key": "token generated"}, (INVALID, "event_key")),
        ({"event_key": "k" * 129}, (INVALID, "event_key")),
        ({"event_key": "token_generated\n"}, (INVALID, "event_key")),
        ({"service_id": ""}, (INVALID, "service_id")),
        ({"user_id": "usr_' OR 1=1 --"}, (INVALID, "user_id")),
        ({"idempotency_key": "x" * 256}, (INVALID, "idempotency_key")),
        ({"properties": {f"p{i}": "v" for i in range(33)}}, (INVALID, "properties")),
        ({"properties": {"member": "v" * 257}}, (INVALID, "properties.member")),
        ({"subscription_id": "sub_unknown"}, (NOT_FOUND, "subscription_id")),
        ({"service_id": "svc_other"}, (INVALID, "service_id")),
        ({"user_id": "usr_other"}, (INVALID, "user_id")),
        ({"invoice_id": "inv_unknown"}, (NOT_FOUND, "invoice_id")),
    ],
)
async def test_invalid_fields_are_rejected_with_the_field_named(
    tenant: Tenant,
    db: asyncpg.Connection,
    fields: dict[str, object],
    expected: tuple[grpc.StatusCode, str],
) -> None:
    event = tenant.event("1")
    for name, value in fields.items():
        if isinstance(value, dict):
            event.properties.update(value)
        else:
            setattr(event, name, value)
    assert await expect_rejection(tenant, event) == expected
    stored = await db.fetchval(
        "SELECT count(*) FROM metering.usage_events WHERE merchant_id = $1", tenant.merchant_id
    )
    assert stored == 0


async def test_exponent_notation_within_bounds_is_accepted(tenant: Tenant) -> None:
    response = await tenant.record("5.25e3")
    assert response.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED


async def test_only_active_subscriptions_take_events(tenant: Tenant) -> None:
    for version, status in enumerate(
        [pb.SUBSCRIPTION_STATUS_PAST_DUE, pb.SUBSCRIPTION_STATUS_CANCELED], start=2
    ):
        await tenant.set_state(status, version=version)
        assert await expect_rejection(tenant, tenant.event("1")) == (
            PRECONDITION,
            "subscription_id",
        )


async def test_events_before_the_open_period_are_rejected(tenant: Tenant) -> None:
    before = tenant.period_start - timedelta(microseconds=1)
    assert await expect_rejection(tenant, tenant.event("1", occurred_at=before)) == (
        PRECONDITION,
        "occurred_at",
    )
    on_the_edge = await tenant.record("1", occurred_at=tenant.period_start)
    assert on_the_edge.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED


async def test_events_too_far_in_the_future_are_rejected(
    tenant: Tenant, clock: ManualClock
) -> None:
    now = clock.now()
    within_skew = await tenant.record("1", occurred_at=now + timedelta(minutes=4, seconds=59))
    assert within_skew.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED
    too_far = tenant.event("1", occurred_at=now + timedelta(minutes=5, seconds=1))
    assert await expect_rejection(tenant, too_far) == (INVALID, "occurred_at")


async def test_a_linked_invoice_must_bill_the_same_service_and_user(tenant: Tenant) -> None:
    for invoice_id, user_id in [("inv_same", tenant.user_id), ("inv_other_user", "usr_other")]:
        await tenant.stub.UpsertInvoiceReference(
            pb.UpsertInvoiceReferenceRequest(
                invoice=pb.InvoiceReference(
                    invoice_id=invoice_id, service_id=tenant.service_id, user_id=user_id
                )
            ),
            metadata=tenant.metadata,
        )
    linked = await tenant.record("1", invoice_id="inv_same")
    assert linked.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED
    assert await expect_rejection(tenant, tenant.event("1", invoice_id="inv_other_user")) == (
        INVALID,
        "invoice_id",
    )


async def test_another_merchants_subscription_is_not_found(tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.RecordUsageEvent(
            pb.RecordUsageEventRequest(event=tenant.event("1")),
            metadata=(("x-merchant-id", "mer_intruder"),),
        )
    assert caught.value.code() == NOT_FOUND


async def test_a_call_without_merchant_is_unauthenticated(tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.RecordUsageEvent(pb.RecordUsageEventRequest(event=tenant.event("1")))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_empty_and_oversized_batches_are_rejected_whole(tenant: Tenant) -> None:
    for events, field in [([], "events"), ([tenant.event("1")] * 10_001, "events")]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tenant.stub.BatchRecordUsageEvents(
                pb.BatchRecordUsageEventsRequest(events=events), metadata=tenant.metadata
            )
        assert (caught.value.code(), field_violation(caught.value)) == (INVALID, field)


async def test_a_subscription_on_a_test_clock_lives_in_its_own_time(
    tenant: Tenant, clock: ManualClock
) -> None:
    ahead = clock.now() + timedelta(days=45)
    state = pb.SubscriptionState(
        subscription_id=tenant.subscription_id,
        service_id=tenant.service_id,
        user_id=tenant.user_id,
        status=pb.SUBSCRIPTION_STATUS_ACTIVE,
        current_period_start=to_timestamp(tenant.period_end),
        current_period_end=to_timestamp(tenant.period_end + timedelta(days=30)),
        version=2,
        test_clock_time=to_timestamp(ahead),
    )
    stored = await tenant.stub.UpsertSubscriptionState(
        pb.UpsertSubscriptionStateRequest(state=state), metadata=tenant.metadata
    )
    assert stored.test_clock_time == state.test_clock_time

    defaulted = await tenant.record("1")
    near = await tenant.record("2", occurred_at=ahead + timedelta(minutes=4))
    listed = await tenant.stub.ListUsageEvents(
        pb.ListUsageEventsRequest(subscription_id=tenant.subscription_id), metadata=tenant.metadata
    )

    assert [e.id for e in listed.events] == [defaulted.event_id, near.event_id]
    assert listed.events[0].occurred_at == to_timestamp(ahead)
    too_far = tenant.event("1", occurred_at=ahead + timedelta(minutes=6))
    assert await expect_rejection(tenant, too_far) == (INVALID, "occurred_at")

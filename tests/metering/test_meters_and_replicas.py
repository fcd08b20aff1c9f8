"""Meters (create, get, list, idempotent retries) and the subscription / invoice replicas."""

import grpc
import pytest

from billing.metering.v1 import metering_pb2 as pb
from tests.metering.conftest import Tenant, field_violation


def meter_request(tenant: Tenant, event_key: str, request_id: str = "") -> pb.CreateMeterRequest:
    return pb.CreateMeterRequest(
        meter=pb.Meter(
            service_id=tenant.service_id, event_key=event_key, aggregation=pb.AGGREGATION_SUM
        ),
        request_id=request_id,
    )


async def test_meters_are_created_read_and_listed_in_pages(tenant: Tenant) -> None:
    created = [
        await tenant.stub.CreateMeter(meter_request(tenant, f"key_{i}"), metadata=tenant.metadata)
        for i in range(5)
    ]
    assert created[0].id.startswith("mtr_") and len(created[0].id) == 30
    assert created[0].display_name == "key_0"
    fetched = await tenant.stub.GetMeter(
        pb.GetMeterRequest(id=created[3].id), metadata=tenant.metadata
    )
    assert fetched == created[3]

    listed: list[str] = []
    token = ""
    while True:
        page = await tenant.stub.ListMeters(
            pb.ListMetersRequest(service_id=tenant.service_id, page_size=2, page_token=token),
            metadata=tenant.metadata,
        )
        listed += [m.event_key for m in page.meters]
        token = page.next_page_token
        if not token:
            break
    assert listed == [f"key_{i}" for i in range(5)]


async def test_a_second_meter_for_a_key_already_exists(tenant: Tenant) -> None:
    await tenant.stub.CreateMeter(meter_request(tenant, "api_request"), metadata=tenant.metadata)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.CreateMeter(
            meter_request(tenant, "api_request"), metadata=tenant.metadata
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "meter.event_key",
    )


async def test_a_retried_create_returns_the_first_meter(tenant: Tenant) -> None:
    first = await tenant.stub.CreateMeter(
        meter_request(tenant, "api_request", "req-1"), metadata=tenant.metadata
    )
    again = await tenant.stub.CreateMeter(
        meter_request(tenant, "api_request", "req-1"), metadata=tenant.metadata
    )
    assert again == first
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.CreateMeter(
            meter_request(tenant, "other_key", "req-1"), metadata=tenant.metadata
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "request_id",
    )


@pytest.mark.parametrize(
    ("meter", "field"),
    [
        (pb.Meter(service_id="svc_1", event_key="k"), "meter.aggregation"),
        (
            pb.Meter(service_id="svc_1", event_key="k", aggregation=pb.AGGREGATION_UNIQUE_COUNT),
            "meter.unique_property",
        ),
        (
            pb.Meter(
                service_id="svc_1",
                event_key="k",
                aggregation=pb.AGGREGATION_SUM,
                unique_property="x",
            ),
            "meter.unique_property",
        ),
        (
            pb.Meter(service_id="", event_key="k", aggregation=pb.AGGREGATION_SUM),
            "meter.service_id",
        ),
        (
            pb.Meter(service_id="svc_1", event_key="bad key", aggregation=pb.AGGREGATION_SUM),
            "meter.event_key",
        ),
        (
            pb.Meter(
                service_id="svc_1",
                event_key="k",
                aggregation=pb.AGGREGATION_SUM,
                display_name="n" * 201,
            ),
            "meter.display_name",
        ),
    ],
)
async def test_invalid_meters_are_rejected(tenant: Tenant, meter: pb.Meter, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.CreateMeter(pb.CreateMeterRequest(meter=meter), metadata=tenant.metadata)
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        field,
    )


async def test_another_merchants_meter_is_not_found(tenant: Tenant) -> None:
    created = await tenant.stub.CreateMeter(
        meter_request(tenant, "api_request"), metadata=tenant.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.GetMeter(
            pb.GetMeterRequest(id=created.id), metadata=(("x-merchant-id", "mer_intruder"),)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_older_subscription_state_never_overwrites_a_newer_one(tenant: Tenant) -> None:
    newer = await tenant.set_state(pb.SUBSCRIPTION_STATUS_CANCELED, version=5)
    stale = await tenant.set_state(pb.SUBSCRIPTION_STATUS_ACTIVE, version=4)
    assert stale == newer
    assert stale.status == pb.SUBSCRIPTION_STATUS_CANCELED


async def test_a_subscription_of_another_merchant_cannot_be_overwritten(tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.UpsertSubscriptionState(
            pb.UpsertSubscriptionStateRequest(
                state=pb.SubscriptionState(
                    subscription_id=tenant.subscription_id,
                    service_id=tenant.service_id,
                    user_id=tenant.user_id,
                    status=pb.SUBSCRIPTION_STATUS_CANCELED,
                    current_period_start=(
                        await tenant.set_state(pb.SUBSCRIPTION_STATUS_ACTIVE, 1)
                    ).current_period_start,
                    current_period_end=(
                        await tenant.set_state(pb.SUBSCRIPTION_STATUS_ACTIVE, 1)
                    ).current_period_end,
                    version=99,
                )
            ),
            metadata=(("x-merchant-id", "mer_intruder"),),
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    still = await tenant.set_state(pb.SUBSCRIPTION_STATUS_ACTIVE, version=1)
    assert (still.status, still.version) == (pb.SUBSCRIPTION_STATUS_ACTIVE, 1)


async def test_a_state_without_status_or_period_is_invalid(tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.UpsertSubscriptionState(
            pb.UpsertSubscriptionStateRequest(
                state=pb.SubscriptionState(subscription_id="sub_x", version=1)
            ),
            metadata=tenant.metadata,
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "state.status",
    )

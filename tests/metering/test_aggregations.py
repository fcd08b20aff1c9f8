"""Every aggregation, computed exactly over decimal quantities, through the real gRPC server."""

from datetime import timedelta

from billing.metering.v1 import metering_pb2 as pb
from tests.metering.conftest import Tenant


async def create_meter(
    tenant: Tenant,
    event_key: str,
    aggregation: "pb.Aggregation.ValueType",
    unique_property: str = "",
) -> pb.Meter:
    return await tenant.stub.CreateMeter(
        pb.CreateMeterRequest(
            meter=pb.Meter(
                service_id=tenant.service_id,
                event_key=event_key,
                aggregation=aggregation,
                unique_property=unique_property,
            )
        ),
        metadata=tenant.metadata,
    )


async def test_each_aggregation_is_exact_over_decimal_quantities(tenant: Tenant) -> None:
    for key, aggregation in [
        ("gb_stored", pb.AGGREGATION_SUM),
        ("api_request", pb.AGGREGATION_COUNT),
        ("gb_peak", pb.AGGREGATION_MAX),
        ("seats", pb.AGGREGATION_LAST),
    ]:
        await create_meter(tenant, key, aggregation)
    start = tenant.period_start
    quantities = ["5.25", "0.000001", "2.75", "0.000000000001", "1000000"]
    for minutes, quantity in enumerate(quantities):
        at = start + timedelta(hours=1, minutes=7 * minutes)
        for key in ("gb_stored", "api_request", "gb_peak"):
            await tenant.record(quantity, event_key=key, occurred_at=at)
    # LAST follows occurred_at, not arrival order.
    await tenant.record("7", event_key="seats", occurred_at=start + timedelta(hours=5))
    await tenant.record("3", event_key="seats", occurred_at=start + timedelta(hours=2))

    found = await tenant.summary(start, start + timedelta(days=1))

    assert found["gb_stored"].value == "1000008.000001000001"
    assert found["gb_stored"].aggregation == pb.AGGREGATION_SUM
    assert found["api_request"].value == "5"
    assert found["api_request"].sum == "1000008.000001000001"
    assert found["gb_peak"].value == "1000000"
    assert found["seats"].value == "7"
    assert found["seats"].event_count == 2
    assert set(found) == {"gb_stored", "api_request", "gb_peak", "seats"}


async def test_unique_count_counts_distinct_property_values(tenant: Tenant) -> None:
    start = tenant.period_start + timedelta(minutes=30)
    # Events recorded before the meter exists are counted too (the meter backfills).
    await tenant.record(
        "1", event_key="active_user", occurred_at=start, properties={"member": "ann"}
    )
    await create_meter(tenant, "active_user", pb.AGGREGATION_UNIQUE_COUNT, unique_property="member")
    for minutes, member in enumerate(["bob", "ann", "cid", "bob"]):
        await tenant.record(
            "1",
            event_key="active_user",
            occurred_at=start + timedelta(hours=2, minutes=minutes),
            properties={"member": member},
        )
    await tenant.record("1", event_key="active_user", occurred_at=start + timedelta(hours=3))

    found = await tenant.summary(tenant.period_start, tenant.period_start + timedelta(days=2))

    assert found["active_user"].aggregation == pb.AGGREGATION_UNIQUE_COUNT
    assert found["active_user"].value == "3"
    assert found["active_user"].event_count == 6


async def test_key_without_meter_sums_as_in_retempo(tenant: Tenant) -> None:
    start = tenant.period_start
    await tenant.record("50000", occurred_at=start + timedelta(hours=1))
    await tenant.record("8192", occurred_at=start + timedelta(hours=30))

    found = await tenant.summary(start, tenant.period_end, event_key="token_generated")

    assert found["token_generated"].meter_id == ""
    assert found["token_generated"].aggregation == pb.AGGREGATION_SUM
    assert found["token_generated"].value == "58192"
    assert found["token_generated"].max == "50000"
    assert found["token_generated"].last == "8192"

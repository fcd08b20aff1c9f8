"""Hostile input to metering: a precise status each time, and nothing stored."""

from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from billing.metering.v1 import metering_pb2 as pb
from tests.conftest import RunningMetering, service_channel
from tests.hostile import (
    BAD_DECIMALS,
    GARBAGE,
    OVERSIZED,
    SCRIPT,
    SQL,
    TEN_MB,
    call_raw,
    invalid_utf8,
    method,
    refused,
    stored_rows,
)
from tests.metering.conftest import Tenant

SERVICE = pb.DESCRIPTOR.services_by_name["MeteringService"]
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def channel(running_metering: RunningMetering) -> AsyncIterator[grpc.aio.Channel]:
    async with service_channel(running_metering.port) as opened:
        yield opened


async def nothing_stored(db: asyncpg.Connection, tenant: Tenant) -> None:
    counts = await stored_rows(db, "metering", tenant.merchant_id)
    # The tenant fixture pushed its subscription's state; nothing else is there.
    assert counts == {name: int(name == "subscriptions") for name in counts}, counts


@pytest.mark.parametrize("payload", GARBAGE)
@pytest.mark.parametrize(
    "name",
    ["RecordUsageEvent", "BatchRecordUsageEvents", "CreateMeter", "BatchUpsertInvoiceReferences"],
)
async def test_malformed_bytes_are_invalid_argument(
    channel: grpc.aio.Channel, tenant: Tenant, db: asyncpg.Connection, name: str, payload: bytes
) -> None:
    error = await call_raw(channel, method(SERVICE, name), payload, tenant.merchant_id)
    assert error.code() == INVALID, error.details()
    await nothing_stored(db, tenant)


async def test_invalid_utf8_in_a_string_is_invalid_argument(
    channel: grpc.aio.Channel, tenant: Tenant, db: asyncpg.Connection
) -> None:
    request = pb.RecordUsageEventRequest(event=tenant.event("1", idempotency_key="not-utf8"))
    payload = invalid_utf8(request, "not-utf8")
    error = await call_raw(
        channel, method(SERVICE, "RecordUsageEvent"), payload, tenant.merchant_id
    )
    assert error.code() == INVALID, error.details()
    await nothing_stored(db, tenant)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"idempotency_key": "a\x00b"}, "event.idempotency_key"),
        ({"properties": {"note": "a\x00b"}}, "event.properties"),
    ],
)
async def test_a_nul_character_is_invalid_argument_naming_the_field(
    tenant: Tenant, db: asyncpg.Connection, fields: dict[str, object], field: str
) -> None:
    await refused(tenant.record("1", **fields), INVALID, field)
    await nothing_stored(db, tenant)


async def test_a_message_over_32_mib_is_resource_exhausted(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    await refused(
        tenant.record("1", idempotency_key="k" * OVERSIZED), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    await nothing_stored(db, tenant)


async def test_a_batch_over_10000_events_is_refused_whole(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    events = [tenant.event("1", idempotency_key=f"e{i}") for i in range(10_001)]
    call = tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(events=events), metadata=tenant.metadata
    )
    await refused(call, INVALID, "events")
    await nothing_stored(db, tenant)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"event_key": "k" * TEN_MB}, "event_key"),
        ({"user_id": "u" * TEN_MB}, "user_id"),
        ({"idempotency_key": "i" * TEN_MB}, "idempotency_key"),
        ({"properties": {"note": "p" * TEN_MB}}, "properties.note"),
    ],
)
async def test_ten_megabyte_strings_are_invalid_argument(
    tenant: Tenant, db: asyncpg.Connection, fields: dict[str, object], field: str
) -> None:
    await refused(tenant.record("1", **fields), INVALID, field)
    await nothing_stored(db, tenant)


@pytest.mark.parametrize("field", ["invoice_id", "service_id", "user_id"])
async def test_a_ten_megabyte_invoice_reference_is_invalid_argument_by_position(
    tenant: Tenant, db: asyncpg.Connection, field: str
) -> None:
    good = pb.InvoiceReference(
        invoice_id="in_1", service_id=tenant.service_id, user_id=tenant.user_id
    )
    hostile = pb.InvoiceReference()
    hostile.CopyFrom(good)
    hostile.invoice_id = "in_2"
    setattr(hostile, field, "x" * TEN_MB)
    call = tenant.stub.BatchUpsertInvoiceReferences(
        pb.BatchUpsertInvoiceReferencesRequest(references=[good, hostile]),
        metadata=tenant.metadata,
    )
    await refused(call, INVALID, f"references[1].{field}")
    await nothing_stored(db, tenant)


async def test_a_ten_megabyte_meter_name_is_invalid_argument(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    meter = pb.Meter(
        service_id=tenant.service_id,
        event_key="tokens",
        aggregation=pb.AGGREGATION_SUM,
        display_name="m" * TEN_MB,
    )
    call = tenant.stub.CreateMeter(pb.CreateMeterRequest(meter=meter), metadata=tenant.metadata)
    await refused(call, INVALID, "meter.display_name")
    await nothing_stored(db, tenant)


async def test_hostile_quantities_in_a_batch_are_each_rejected(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    events = [tenant.event(quantity) for quantity in BAD_DECIMALS]
    answer = await tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(events=events), metadata=tenant.metadata
    )
    assert (answer.accepted_count, answer.rejected_count) == (0, len(BAD_DECIMALS))
    assert [(r.outcome, r.error.code, r.error.field) for r in answer.results] == [
        (pb.USAGE_EVENT_OUTCOME_REJECTED, "INVALID_ARGUMENT", "quantity")
    ] * len(BAD_DECIMALS)
    await nothing_stored(db, tenant)


async def test_an_exponent_is_stored_as_its_plain_value(tenant: Tenant) -> None:
    assert (await tenant.record("1e5")).outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED
    listed = await tenant.stub.ListUsageEvents(
        pb.ListUsageEventsRequest(subscription_id=tenant.subscription_id), metadata=tenant.metadata
    )
    assert [e.quantity for e in listed.events] == ["100000"]


async def test_sql_and_script_in_free_text_are_stored_literally(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    sql = SQL.format(table="metering.usage_events")
    properties = {"note": sql, "html": SCRIPT}
    recorded = await tenant.record("1", idempotency_key=sql, properties=properties)
    assert recorded.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED
    meter = await tenant.stub.CreateMeter(
        pb.CreateMeterRequest(
            meter=pb.Meter(
                service_id=tenant.service_id,
                event_key="tokens",
                aggregation=pb.AGGREGATION_SUM,
                display_name=SCRIPT,
            )
        ),
        metadata=tenant.metadata,
    )

    listed = await tenant.stub.ListUsageEvents(
        pb.ListUsageEventsRequest(subscription_id=tenant.subscription_id), metadata=tenant.metadata
    )
    [event] = listed.events
    assert (event.idempotency_key, dict(event.properties)) == (sql, properties)
    fetched = await tenant.stub.GetMeter(pb.GetMeterRequest(id=meter.id), metadata=tenant.metadata)
    assert fetched.display_name == SCRIPT
    # The table is still there, holding the one event.
    counts = await stored_rows(db, "metering", tenant.merchant_id)
    assert (counts["usage_events"], counts["meters"]) == (1, 1)


async def test_a_malformed_message_in_a_stream_ends_it_invalid_argument(
    channel: grpc.aio.Channel, tenant: Tenant, db: asyncpg.Connection
) -> None:
    call: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(
        method(SERVICE, "StreamUsageEvents"), request_serializer=None, response_deserializer=None
    )

    async def messages() -> AsyncIterator[bytes]:
        event = tenant.event("2", idempotency_key="before")
        yield pb.StreamUsageEventsRequest(event=event).SerializeToString()
        yield GARBAGE[0]

    answers = call(messages(), metadata=tenant.metadata)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for answer in answers:
            received.append(pb.StreamUsageEventsResponse.FromString(answer).result)
    assert caught.value.code() == INVALID, caught.value.details()
    # The event before it was committed and answered; nothing after it.
    assert [r.outcome for r in received] == [pb.USAGE_EVENT_OUTCOME_ACCEPTED]
    counts = await stored_rows(db, "metering", tenant.merchant_id)
    assert counts["usage_events"] == 1

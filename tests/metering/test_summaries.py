"""Summaries come from rollups plus raw edges; they must equal SQL over the raw events."""

import random
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import grpc
import pytest

from billing.metering.v1 import metering_pb2 as pb
from service_kit.proto_time import to_timestamp
from tests.metering.conftest import Tenant, field_violation

RAW_TRUTH = """
    SELECT e.event_key, sum(e.quantity) AS total, count(*) AS events, max(e.quantity) AS peak,
        (array_agg(e.quantity ORDER BY e.occurred_at DESC, e.seq DESC))[1] AS last
    FROM metering.usage_events e
    WHERE e.subscription_id = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3
        AND NOT EXISTS (SELECT 1 FROM metering.usage_event_cancellations c
                        WHERE c.subscription_id = e.subscription_id AND c.event_id = e.id)
    GROUP BY e.event_key
"""


def plain(value: Decimal) -> str:
    return "0" if value == 0 else format(value.normalize(), "f")


async def test_summary_equals_sql_over_raw_events_after_cancellations(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    rng = random.Random(20261126)
    start = tenant.period_start
    events = [
        tenant.event(
            f"{rng.randint(0, 5000)}.{rng.randint(0, 999999):06d}",
            event_key=rng.choice(["token_generated", "gb_stored"]),
            occurred_at=start + timedelta(seconds=rng.randint(0, 3 * 24 * 3600)),
        )
        for _ in range(3000)
    ]
    response = await tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(events=events), metadata=tenant.metadata
    )
    assert response.accepted_count == 3000
    for result in rng.sample(list(response.results), 400):
        canceled = await tenant.stub.CancelUsageEvent(
            pb.CancelUsageEventRequest(id=result.event_id, reason="duplicate upstream"),
            metadata=tenant.metadata,
        )
        assert canceled.cancel_reason == "duplicate upstream"

    # Windows that cut through hours, align with them, and sit inside one hour.
    windows: list[tuple[datetime, datetime]] = [
        (start, start + timedelta(days=3)),
        (start + timedelta(hours=5, minutes=13, seconds=7), start + timedelta(days=2, minutes=1)),
        (start + timedelta(minutes=43), start + timedelta(hours=1, minutes=43)),
        (start + timedelta(hours=30, minutes=1), start + timedelta(hours=30, minutes=50)),
    ]
    for window_start, window_end in windows:
        found = await tenant.summary(window_start, window_end)
        truth = {
            row["event_key"]: row
            for row in await db.fetch(RAW_TRUTH, tenant.subscription_id, window_start, window_end)
        }
        assert set(found) == set(truth)
        for key, row in truth.items():
            summary = found[key]
            assert summary.value == plain(row["total"])
            assert summary.event_count == row["events"]
            assert summary.max == plain(row["peak"])
            assert summary.last == plain(row["last"])


async def test_canceling_twice_returns_the_event_unchanged(tenant: Tenant) -> None:
    recorded = await tenant.record("42", occurred_at=tenant.period_start + timedelta(hours=1))
    first = await tenant.stub.CancelUsageEvent(
        pb.CancelUsageEventRequest(id=recorded.event_id, reason="first"), metadata=tenant.metadata
    )
    second = await tenant.stub.CancelUsageEvent(
        pb.CancelUsageEventRequest(id=recorded.event_id, reason="second"), metadata=tenant.metadata
    )
    assert second == first
    assert second.cancel_reason == "first"
    found = await tenant.summary(
        tenant.period_start, tenant.period_end, event_key="token_generated"
    )
    assert (found["token_generated"].value, found["token_generated"].event_count) == ("0", 0)


async def test_events_of_a_closed_period_cannot_be_canceled(tenant: Tenant) -> None:
    recorded = await tenant.record("1", occurred_at=tenant.period_start + timedelta(hours=1))
    await tenant.set_state(
        pb.SUBSCRIPTION_STATUS_ACTIVE, version=2, start=tenant.period_start + timedelta(days=1)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.stub.CancelUsageEvent(
            pb.CancelUsageEventRequest(id=recorded.event_id), metadata=tenant.metadata
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "id",
    )


async def test_another_merchant_cannot_cancel_or_summarize(tenant: Tenant) -> None:
    recorded = await tenant.record("1")
    intruder = (("x-merchant-id", "mer_intruder"),)
    with pytest.raises(grpc.aio.AioRpcError) as cancel:
        await tenant.stub.CancelUsageEvent(
            pb.CancelUsageEventRequest(id=recorded.event_id), metadata=intruder
        )
    with pytest.raises(grpc.aio.AioRpcError) as summary:
        await tenant.stub.GetUsageSummary(
            pb.GetUsageSummaryRequest(
                subscription_id=tenant.subscription_id,
                start_time=to_timestamp(tenant.period_start),
                end_time=to_timestamp(tenant.period_end),
            ),
            metadata=intruder,
        )
    assert cancel.value.code() == grpc.StatusCode.NOT_FOUND
    assert (summary.value.code(), field_violation(summary.value)) == (
        grpc.StatusCode.NOT_FOUND,
        "subscription_id",
    )


async def test_a_window_must_have_a_start_before_its_end(tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.summary(tenant.period_end, tenant.period_start)
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "end_time",
    )

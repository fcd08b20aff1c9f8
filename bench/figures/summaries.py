"""GetUsageSummary p99 with 10,000 vs 10,000,000 events in the period; baseline: itself at 10,000
events; target: ratio <= 1.5 (the cost is flat in the number of events).

Two subscriptions of mer_bench get metering replicas through UpsertSubscriptionState (ACTIVE, a
30-day period that started 29 days ago at half past an hour). Their events are loaded directly,
not through the API (bench/figures/load.py: binary COPY, the rollups in one INSERT ... SELECT as
ingestion computes them, VACUUM ANALYZE, CHECKPOINT): 10,000 and 10,000,000 events evenly spread
from the period start to now, quantities 1.5, 2, 0.25, 3.125 in turn. Loading takes 85-100 s on
2 cores (COPY 55-70 s, rollups 25 s); the times are printed to stderr.

Each subscription's summary of the whole period (every event key, as the period close asks;
start and end at half past an hour, so the two partial edge hours are read from raw events) is
first checked against a SQL sum and count over the raw rows, then called 200 times to warm up and
2,000 times at concurrency 16 from one grpc.aio channel; p50 and p99 are of the 2,000.
"""

from __future__ import annotations

import itertools
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from bench.figures import Figure, percentile, timed_calls
from bench.figures.load import (
    build_rollups,
    copy_events,
    ensure_partitions,
    spread_events,
    vacuum_analyze,
)
from bench.stack import MERCHANT, Stack
from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from service_kit.channels import open_channel
from service_kit.proto_time import to_timestamp
from service_kit.tenancy import MERCHANT_METADATA_KEY

METADATA = ((MERCHANT_METADATA_KEY, MERCHANT),)
SERVICE, USER = "svc_bench", "usr_bench"
SMALL, LARGE = 10_000, 10_000_000
QUANTITIES = [Decimal("1.5"), Decimal("2"), Decimal("0.25"), Decimal("3.125")]
WARMUP, CALLS, CONCURRENCY = 200, 2_000, 16
TARGET_RATIO = 1.5


def _log(message: str) -> None:
    print(f"  summaries: {message}", file=sys.stderr, flush=True)


async def _load(stack: Stack, subscriptions: dict[str, int], start: datetime) -> None:
    now = datetime.now(UTC)
    await ensure_partitions(stack.database_url, start, now)
    connection = await asyncpg.connect(stack.dsn)
    try:
        for subscription, count in subscriptions.items():
            began = time.perf_counter()
            rows = spread_events(
                MERCHANT, SERVICE, subscription, USER, count, start, now, QUANTITIES
            )
            await copy_events(connection, rows)
            _log(f"COPY of {count:,} events: {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        await build_rollups(connection, MERCHANT, list(subscriptions))
        _log(f"rollups: {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        await vacuum_analyze(connection)
        _log(f"VACUUM ANALYZE, CHECKPOINT: {time.perf_counter() - began:.1f} s")
    finally:
        await connection.close()


async def _check_exact(
    stack: Stack, summary: pb.GetUsageSummaryResponse, subscription: str, count: int
) -> None:
    """The summary equals a SQL sum and count over the raw rows, and what was loaded."""
    connection = await asyncpg.connect(stack.dsn)
    try:
        row = await connection.fetchrow(
            "SELECT sum(quantity), count(*) FROM metering.usage_events "
            "WHERE subscription_id = $1 AND occurred_at >= $2 AND occurred_at < $3",
            subscription,
            summary.start_time.ToDatetime(tzinfo=UTC),
            summary.end_time.ToDatetime(tzinfo=UTC),
        )
    finally:
        await connection.close()
    assert row is not None
    rounds, rest = divmod(count, len(QUANTITIES))
    loaded = sum(QUANTITIES) * rounds + sum(QUANTITIES[:rest])
    (found,) = summary.summaries
    if (Decimal(found.sum), found.event_count) != (row[0], row[1]) or row[0] != loaded:
        raise AssertionError(
            f"{subscription}: summary sum/count {found.sum}/{found.event_count}, "
            f"SQL {row[0]}/{row[1]}, loaded {loaded}/{count}"
        )


async def _latencies(
    stub: metering_pb2_grpc.MeteringServiceAsyncStub, request: pb.GetUsageSummaryRequest
) -> list[float]:
    """Milliseconds of each of CALLS calls, CONCURRENCY at a time, after WARMUP calls."""
    for _ in range(WARMUP):
        await stub.GetUsageSummary(request, metadata=METADATA)
    latencies, _ = await timed_calls(
        lambda r: stub.GetUsageSummary(r, metadata=METADATA),
        itertools.repeat(request, CALLS),
        CONCURRENCY,
    )
    return latencies


async def measure(stack: Stack) -> list[Figure]:
    now = datetime.now(UTC)
    start = now.replace(minute=30, second=0, microsecond=0) - timedelta(days=29)
    if start > now - timedelta(days=29):
        start -= timedelta(hours=1)
    end = start + timedelta(days=30)
    subscriptions = {"sub_summary_10k": SMALL, "sub_summary_10m": LARGE}
    percentiles: dict[str, tuple[float, float]] = {}
    async with open_channel(stack.metering, stack.credentials) as channel:
        stub = metering_pb2_grpc.MeteringServiceStub(channel)
        for subscription in subscriptions:
            await stub.UpsertSubscriptionState(
                pb.UpsertSubscriptionStateRequest(
                    state=pb.SubscriptionState(
                        subscription_id=subscription,
                        service_id=SERVICE,
                        user_id=USER,
                        status=pb.SUBSCRIPTION_STATUS_ACTIVE,
                        current_period_start=to_timestamp(start),
                        current_period_end=to_timestamp(end),
                        version=1,
                    )
                ),
                metadata=METADATA,
            )
        began = time.perf_counter()
        await _load(stack, subscriptions, start)
        _log(f"loaded {SMALL + LARGE:,} events in {time.perf_counter() - began:.1f} s")
        for subscription, count in subscriptions.items():
            request = pb.GetUsageSummaryRequest(
                subscription_id=subscription,
                start_time=to_timestamp(start),
                end_time=to_timestamp(end),
            )
            await _check_exact(
                stack, await stub.GetUsageSummary(request, metadata=METADATA), subscription, count
            )
            latencies = await _latencies(stub, request)
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            percentiles[subscription] = (p50, p99)
            _log(f"{subscription}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms")
    small, large = percentiles["sub_summary_10k"], percentiles["sub_summary_10m"]
    return [
        Figure(
            f"GetUsageSummary {name}, 10M events",
            large[index],
            "ms",
            baseline="same at 10k events",
            baseline_value=small[index],
            target=f"ratio <= {TARGET_RATIO}",
            met=large[index] <= TARGET_RATIO * small[index],
        )
        for index, name in ((1, "p99"), (0, "p50"))
    ]

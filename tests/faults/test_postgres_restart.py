"""PostgreSQL restarted in the middle of a load: the services keep running (same processes),
reconnect by themselves, the clients' retries succeed, and every event is stored exactly once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg

from billing.metering.v1 import metering_pb2_grpc
from tests.faults.conftest import (
    TEST_TIMEOUT_SECONDS,
    FaultPlatform,
    new_merchant_id,
    new_subscriber,
)
from tests.faults.load import (
    Load,
    batches,
    expected_sum,
    grpc_sender,
    report,
    rest_sender,
    single_sender,
    stored_usage,
)

BATCH_EVENTS, BATCH_SIZE = 20_000, 500
SINGLE_EVENTS = 1_000
REST_EVENTS, REST_BATCH = 5_000, 500
# How long the database stays down.
DOWN_SECONDS = 2.0


async def test_services_ride_out_a_postgres_restart(
    fault_platform: FaultPlatform,
    metering_rpc: metering_pb2_grpc.MeteringServiceAsyncStub,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        subscribers = [
            await new_subscriber(fault_platform, new_merchant_id(purpose))
            for purpose in ("pg_batch", "pg_single", "pg_rest")
        ]
        batch_subscriber, single_subscriber, rest_subscriber = subscribers
        key = await fault_platform.api_key(rest_subscriber.merchant_id)
        pids = {name: process.pid for name, process in fault_platform.processes.items()}
        async with fault_platform.rest_client(key) as client:
            loads = {
                "gRPC batches": Load(
                    grpc_sender(
                        metering_rpc,
                        batch_subscriber,
                        fault_platform.metadata(batch_subscriber.merchant_id),
                    ),
                    batches("pgb", BATCH_EVENTS, BATCH_SIZE),
                ),
                "gRPC single events": Load(
                    single_sender(
                        metering_rpc,
                        single_subscriber,
                        fault_platform.metadata(single_subscriber.merchant_id),
                    ),
                    batches("pgs", SINGLE_EVENTS, 1),
                    concurrency=20,
                ),
                "REST batches": Load(
                    rest_sender(client, rest_subscriber), batches("pgr", REST_EVENTS, REST_BATCH)
                ),
            }
            running = asyncio.gather(*(load.run() for load in loads.values()))
            await loads["gRPC batches"].acknowledged_at_least(BATCH_EVENTS // 4)
            acked_at_stop = sum(load.acknowledged for load in loads.values())
            await asyncio.to_thread(fault_platform.cluster.stop)
            await asyncio.sleep(DOWN_SECONDS)
            await asyncio.to_thread(fault_platform.cluster.start)
            await running

        db = await asyncpg.connect(fault_platform.dsn)
        try:
            stored = [await stored_usage(db, subscriber) for subscriber in subscribers]
        finally:
            await db.close()
        sent = [BATCH_EVENTS, SINGLE_EVENTS, REST_EVENTS]
        for (name, load), found, events in zip(loads.items(), stored, sent, strict=True):
            report(
                f"postgres restart ({name})",
                {
                    **load.figures(),
                    "stored": found.events,
                    "stored_sum": found.total,
                    "lost": events - found.distinct_keys,
                    "doubled": found.events - found.distinct_keys,
                },
            )
        assert {name: process.pid for name, process in fault_platform.processes.items()} == pids
        assert acked_at_stop < sum(sent)
        assert all(load.failed_attempts > 0 for load in loads.values())
        assert [(load.acknowledged, load.rejected) for load in loads.values()] == [
            (events, 0) for events in sent
        ]
        assert [(found.events, found.distinct_keys) for found in stored] == [
            (events, events) for events in sent
        ]
        assert [found.total for found in stored] == [expected_sum(events) for events in sent]
        assert [found.total for found in stored] == [
            Decimal("99518.90"),
            Decimal("4975.09"),
            Decimal("24876.35"),
        ]
        assert [found.rollup_total for found in stored] == [found.total for found in stored]

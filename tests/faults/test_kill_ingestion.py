"""kill -9 of the process taking usage events in the middle of a load whose client retries with
the same idempotency keys: after a restart on the same port, every event is stored exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import asyncpg

from billing.metering.v1 import metering_pb2 as mpb
from billing.metering.v1 import metering_pb2_grpc
from devstack.processes import ServiceProcess
from service_kit.proto_time import to_timestamp
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
    stored_usage,
)

GRPC_EVENTS, GRPC_BATCH = 200_000, 2_000
# The gateway path parses JSON per event: a quarter of the load keeps the test within bounds.
REST_EVENTS, REST_BATCH = 50_000, 1_000
REPLAYED_BATCHES = 4


async def _kill_midway_and_replay(
    fault_platform: FaultPlatform, load: Load, kill_after: int, process: ServiceProcess
) -> tuple[int, Load]:
    """Runs the load; once `kill_after` events are acknowledged, kills the process with SIGKILL
    and restarts it on its port while the load retries. Then sends again the batches answered
    last before the kill, as a client whose acks were lost in the crash would. Returns the count
    of events acknowledged at the kill, and that replay."""
    first_pid = process.pid
    running = asyncio.create_task(load.run())
    await load.acknowledged_at_least(kill_after)
    process.kill()
    acknowledged_at_kill, last_answered = load.acknowledged, load.answered[-REPLAYED_BATCHES:]
    await fault_platform.start(process)
    await running
    replay = Load(load.send, last_answered)
    await replay.run()
    assert process.pid != first_pid
    return acknowledged_at_kill, replay


async def test_metering_killed_mid_load_stores_every_event_once(
    fault_platform: FaultPlatform,
    metering_rpc: metering_pb2_grpc.MeteringServiceAsyncStub,
    db: asyncpg.Connection,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        subscriber = await new_subscriber(fault_platform, new_merchant_id("kill_metering"))
        metadata = fault_platform.metadata(subscriber.merchant_id)
        load = Load(
            grpc_sender(metering_rpc, subscriber, metadata),
            batches("grpc", GRPC_EVENTS, GRPC_BATCH),
        )
        acked_at_kill, replay = await _kill_midway_and_replay(
            fault_platform, load, GRPC_EVENTS * 2 // 5, fault_platform.metering
        )
        stored = await stored_usage(db, subscriber)
        summary = await metering_rpc.GetUsageSummary(
            mpb.GetUsageSummaryRequest(
                subscription_id=subscriber.subscription_id,
                event_key="token_generated",
                start_time=to_timestamp(subscriber.period_start),
                end_time=to_timestamp(subscriber.period_end + timedelta(days=1)),
            ),
            metadata=metadata,
        )
        report(
            "metering kill -9 (gRPC batches)",
            {
                **load.figures(),
                "acknowledged_at_kill": acked_at_kill,
                "replayed_after_restart": replay.sent,
                "replay_duplicates_absorbed": replay.duplicates,
                "stored": stored.events,
                "stored_sum": stored.total,
                "lost": GRPC_EVENTS - stored.distinct_keys,
                "doubled": stored.events - stored.distinct_keys,
            },
        )
        assert GRPC_EVENTS * 2 // 5 <= acked_at_kill < GRPC_EVENTS
        assert load.failed_attempts > 0
        assert (load.sent, load.acknowledged, load.rejected) == (GRPC_EVENTS, GRPC_EVENTS, 0)
        replayed = REPLAYED_BATCHES * GRPC_BATCH
        assert (replay.sent, replay.accepted, replay.duplicates) == (replayed, 0, replayed)
        assert stored.events == stored.distinct_keys == GRPC_EVENTS
        assert stored.total == expected_sum(GRPC_EVENTS) == Decimal("996809.00")
        assert (stored.rollup_events, stored.rollup_total) == (GRPC_EVENTS, stored.total)
        (found,) = summary.summaries
        assert (found.event_count, Decimal(found.sum)) == (GRPC_EVENTS, Decimal("996809"))


async def test_gateway_killed_mid_load_stores_every_event_once(
    fault_platform: FaultPlatform, db: asyncpg.Connection
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        merchant_id = new_merchant_id("kill_gateway")
        subscriber = await new_subscriber(fault_platform, merchant_id)
        key = await fault_platform.api_key(merchant_id)
        async with fault_platform.rest_client(key) as client:
            load = Load(rest_sender(client, subscriber), batches("rest", REST_EVENTS, REST_BATCH))
            acked_at_kill, replay = await _kill_midway_and_replay(
                fault_platform, load, REST_EVENTS * 2 // 5, fault_platform.gateway
            )
        stored = await stored_usage(db, subscriber)
        report(
            "gateway kill -9 (REST batches)",
            {
                **load.figures(),
                "acknowledged_at_kill": acked_at_kill,
                "replayed_after_restart": replay.sent,
                "replay_answered_from_store": replay.replayed,
                "stored": stored.events,
                "stored_sum": stored.total,
                "lost": REST_EVENTS - stored.distinct_keys,
                "doubled": stored.events - stored.distinct_keys,
            },
        )
        assert REST_EVENTS * 2 // 5 <= acked_at_kill < REST_EVENTS
        assert load.failed_attempts > 0
        assert (load.sent, load.acknowledged, load.rejected) == (REST_EVENTS, REST_EVENTS, 0)
        # Answered from the gateway's Idempotency-Key store: the first answers, not run again.
        replayed = REPLAYED_BATCHES * REST_BATCH
        assert (replay.sent, replay.accepted, replay.replayed) == (replayed, replayed, replayed)
        assert stored.events == stored.distinct_keys == REST_EVENTS
        assert stored.total == expected_sum(REST_EVENTS) == Decimal("248864.75")
        assert (stored.rollup_events, stored.rollup_total) == (REST_EVENTS, stored.total)

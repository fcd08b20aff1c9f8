"""A first look at ingestion speed: single, batch and stream, against a real metering process.

`python -m bench.ingest_probe` starts a private PostgreSQL and `python -m metering_svc serve` as a
separate process, records events three ways, checks the stored count and sum are exactly what was
sent, and prints events per second. The client is Python asyncio (grpc.aio) on the same 2 cores, so
the unary figure is a lower bound; the proper benchmark with h2load and baselines is `make bench`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import grpc

from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from devstack.postgres import PrivateCluster, free_port
from service_kit import migrations
from service_kit.proto_time import to_timestamp

MIGRATIONS = Path(__file__).resolve().parent.parent / "metering_svc" / "migrations"
METADATA = (("x-merchant-id", "mer_bench"),)
SINGLE_EVENTS, SINGLE_CONCURRENCY = 10_000, 64
BATCH_EVENTS, BATCH_SIZE = 200_000, 1_000
STREAM_EVENTS = 200_000


def event(subscription: str, quantity: str, key: str) -> pb.UsageEventInput:
    return pb.UsageEventInput(
        service_id="svc_bench",
        subscription_id=subscription,
        user_id="usr_bench",
        event_key="token_generated",
        quantity=quantity,
        idempotency_key=key,
    )


async def single(stub: metering_pb2_grpc.MeteringServiceAsyncStub) -> float:
    queue = iter(range(SINGLE_EVENTS))

    async def worker() -> None:
        for i in queue:
            await stub.RecordUsageEvent(
                pb.RecordUsageEventRequest(event=event("sub_single", "1.5", f"s{i}")),
                metadata=METADATA,
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(SINGLE_CONCURRENCY)))
    return SINGLE_EVENTS / (time.perf_counter() - started)


async def batch(stub: metering_pb2_grpc.MeteringServiceAsyncStub) -> float:
    requests = [
        pb.BatchRecordUsageEventsRequest(
            events=[event("sub_batch", "1.5", f"b{n}-{i}") for i in range(BATCH_SIZE)]
        )
        for n in range(BATCH_EVENTS // BATCH_SIZE)
    ]
    queue = iter(requests)

    async def worker() -> None:
        for request in queue:
            await stub.BatchRecordUsageEvents(request, metadata=METADATA)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(4)))
    return BATCH_EVENTS / (time.perf_counter() - started)


async def stream(stub: metering_pb2_grpc.MeteringServiceAsyncStub) -> float:
    events = [event("sub_stream", "1.5", f"t{i}") for i in range(STREAM_EVENTS)]

    def sent() -> Iterator[pb.UsageEventInput]:
        yield from events

    started = time.perf_counter()
    acknowledged = 0
    async for _ in stub.StreamUsageEvents(sent(), metadata=METADATA):
        acknowledged += 1
    assert acknowledged == STREAM_EVENTS
    return STREAM_EVENTS / (time.perf_counter() - started)


async def measure(url: str, port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        stub = metering_pb2_grpc.MeteringServiceStub(channel)
        start = datetime.now(UTC) - timedelta(days=1)
        for subscription in ("sub_single", "sub_batch", "sub_stream"):
            await stub.UpsertSubscriptionState(
                pb.UpsertSubscriptionStateRequest(
                    state=pb.SubscriptionState(
                        subscription_id=subscription,
                        service_id="svc_bench",
                        user_id="usr_bench",
                        status=pb.SUBSCRIPTION_STATUS_ACTIVE,
                        current_period_start=to_timestamp(start),
                        current_period_end=to_timestamp(start + timedelta(days=30)),
                        version=1,
                    )
                ),
                metadata=METADATA,
            )
        figures = {
            "single": await single(stub),
            "batch": await batch(stub),
            "stream": await stream(stub),
        }
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    expected = {"sub_single": SINGLE_EVENTS, "sub_batch": BATCH_EVENTS, "sub_stream": STREAM_EVENTS}
    for subscription, count in expected.items():
        row = await connection.fetchrow(
            "SELECT count(*), sum(quantity) FROM metering.usage_events WHERE subscription_id = $1",
            subscription,
        )
        assert row is not None and (row[0], row[1]) == (count, Decimal("1.5") * count), row
    await connection.close()
    print("| ingestion | events/s |\n| --- | --- |")
    for name, rate in figures.items():
        print(f"| {name} | {rate:,.0f} |")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ingest-probe-") as root:
        cluster = PrivateCluster(Path(root) / "pgdata")
        cluster.start()
        server = None
        try:
            cluster.create_database("billing")
            url = cluster.url("billing")
            migrations.upgrade(MIGRATIONS, url)
            port = free_port()
            env = {
                **os.environ,
                "METERING_DATABASE_URL": url,
                "METERING_GRPC_PORT": str(port),
                "METERING_LOG_LEVEL": "WARNING",
            }
            server = subprocess.Popen([sys.executable, "-m", "metering_svc", "serve"], env=env)
            asyncio.run(measure(url, port))
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)
            cluster.stop()


if __name__ == "__main__":
    main()

"""Ingestion: unary RecordUsageEvent under h2load (vs a trivial grpc.aio echo server, same load);
BatchRecordUsageEvents from an asyncio grpc.aio client and StreamUsageEvents from h2load (vs raw
asyncpg COPY of the same rows into a same-shaped table with the same unique key; the stream also
vs the echo server's stream, same load). Every run is checked: the stored count and sum equal
what was acknowledged."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from bench.figures import Figure, percentile
from bench.figures.load import COLUMNS
from bench.stack import MERCHANT, Stack
from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from devstack.postgres import free_port
from service_kit.channels import open_channel
from service_kit.proto_time import to_timestamp

METADATA = (("x-merchant-id", MERCHANT),)
UNARY_REQUESTS = 20_000
UNARY_CLIENTS, UNARY_STREAMS = 4, 16  # 64 calls in flight
BATCHES, BATCH_SIZE, BATCH_CALLERS = 200, 1_000, 4
STREAMS, STREAM_EVENTS = 4, 25_000  # events per stream
QUANTITY = "1.5"


def _event(subscription: str, key: str = "") -> pb.UsageEventInput:
    return pb.UsageEventInput(
        service_id="svc_bench",
        subscription_id=subscription,
        user_id="usr_bench",
        event_key="token_generated",
        quantity=QUANTITY,
        idempotency_key=key,
    )


async def subscribe(
    stub: metering_pb2_grpc.MeteringServiceAsyncStub,
    subscription: str,
    limits: Sequence[pb.UsageLimit] = (),
    prepaid: pb.PrepaidAllowance | None = None,
) -> None:
    """An ACTIVE replica of the subscription, in the second day of a 30-day period; a
    prepaid-only one when `prepaid` is given (its usage paid from the period's start)."""
    start = datetime.now(UTC) - timedelta(days=1)
    state = pb.SubscriptionState(
        subscription_id=subscription,
        service_id="svc_bench",
        user_id="usr_bench",
        status=pb.SUBSCRIPTION_STATUS_ACTIVE,
        current_period_start=to_timestamp(start),
        current_period_end=to_timestamp(start + timedelta(days=30)),
        version=1,
        limits=limits,
    )
    if prepaid is not None:
        state.prepaid.CopyFrom(prepaid)
        state.prepaid.since.CopyFrom(state.current_period_start)
    await stub.UpsertSubscriptionState(
        pb.UpsertSubscriptionStateRequest(state=state), metadata=METADATA
    )


def _h2load(port: int, method: str, body: Path, authorization: str, *options: str) -> str:
    """The output of one h2load run posting `body` (gRPC-framed messages) to a metering
    method."""
    return subprocess.run(
        [
            "h2load",
            *options,
            "-d",
            str(body),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            "-H",
            f"x-merchant-id: {MERCHANT}",
            "-H",
            f"authorization: {authorization}",
            f"http://127.0.0.1:{port}/billing.metering.v1.MeteringService/{method}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout


def _succeeded(output: str) -> int:
    """Requests answered HTTP 200 (failed gRPC calls among them: their status is a trailer)."""
    return int(output.split(" succeeded, ")[0].rsplit(" ", 1)[-1])


def h2load_unary(
    port: int,
    body: Path,
    log: Path,
    authorization: str,
    method: str = "RecordUsageEvent",
    streams: int = UNARY_STREAMS,
) -> tuple[int, float, list[float]]:
    """(succeeded, requests/s, latencies in ms) of the unary load: UNARY_REQUESTS calls of
    `method`, UNARY_CLIENTS connections x `streams` in flight (64 by default)."""
    log.unlink(missing_ok=True)
    output = _h2load(
        port,
        method,
        body,
        authorization,
        *("-n", str(UNARY_REQUESTS), "-c", str(UNARY_CLIENTS), "-m", str(streams)),
        *("--log-file", str(log)),
    )
    rate = float(output.split("finished in ")[1].split(", ")[1].split(" req/s")[0])
    latencies = sorted(int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines())
    return _succeeded(output), rate, latencies


def framed(messages: Iterable[bytes]) -> bytes:
    """Messages as a gRPC request body: each prefixed by its flag byte and length."""
    return b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in messages)


async def _h2load_streams(port: int, bodies: list[Path], authorization: str) -> float:
    """Events/s of one StreamUsageEvents call per body, all at once, each its own h2load."""
    started = time.perf_counter()
    outputs = await asyncio.gather(
        *(
            asyncio.to_thread(_h2load, port, "StreamUsageEvents", body, authorization, "-n1", "-c1")
            for body in bodies
        )
    )
    elapsed = time.perf_counter() - started
    if sum(map(_succeeded, outputs)) != len(bodies):
        raise RuntimeError("stream: a StreamUsageEvents call failed")
    return len(bodies) * STREAM_EVENTS / elapsed


async def _stored(dsn: str, subscription: str) -> tuple[int, Decimal]:
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT count(*), coalesce(sum(quantity), 0) FROM metering.usage_events"
            " WHERE subscription_id = $1",
            subscription,
        )
    finally:
        await connection.close()
    assert row is not None
    return int(row[0]), Decimal(row[1])


def _check(what: str, stored: tuple[int, Decimal], acknowledged: int) -> None:
    expected = (acknowledged, Decimal(QUANTITY) * acknowledged)
    if stored != expected:
        raise RuntimeError(f"{what}: stored {stored}, acknowledged {expected}: not exact")


@asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    """The trivial grpc.aio server of bench/echo_server.py, running; yields its port."""
    port = free_port()
    echo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.echo_server", str(port)
    )
    try:
        await asyncio.sleep(1.5)
        yield port
    finally:
        echo.terminate()
        await echo.wait()


async def unary(stack: Stack, stub: metering_pb2_grpc.MeteringServiceAsyncStub) -> list[Figure]:
    await subscribe(stub, "sub_unary")
    folder = Path(tempfile.mkdtemp(prefix="h2load-"))
    body = folder / "request.bin"
    body.write_bytes(
        framed([pb.RecordUsageEventRequest(event=_event("sub_unary")).SerializeToString()])
    )
    authorization = stack.credentials.authorization
    succeeded, rate, latencies = h2load_unary(
        int(stack.metering.rsplit(":", 1)[1]), body, folder / "log", authorization
    )
    # h2load counts any HTTP 200 as a success, failed gRPC calls included: the database decides.
    _check("unary", await _stored(stack.dsn, "sub_unary"), succeeded)
    if succeeded != UNARY_REQUESTS:
        raise RuntimeError(f"unary: only {succeeded} of {UNARY_REQUESTS} requests succeeded")
    async with echo_server() as echo_port:
        _, echo_rate, echo_latencies = h2load_unary(
            echo_port, body, folder / "echo-log", authorization
        )
    return [
        Figure(
            "unary RecordUsageEvent, c=64 (h2load)",
            rate,
            "events/s",
            "grpc.aio echo",
            echo_rate,
            ">= 0.5 x echo",
            rate >= 0.5 * echo_rate,
        ),
        Figure(
            "unary RecordUsageEvent p50",
            percentile(latencies, 0.5),
            "ms",
            "echo p50",
            percentile(echo_latencies, 0.5),
        ),
        Figure(
            "unary RecordUsageEvent p99",
            percentile(latencies, 0.99),
            "ms",
            "echo p99",
            percentile(echo_latencies, 0.99),
            "<= 25 ms",
            percentile(latencies, 0.99) <= 25,
        ),
    ]


async def batches(stack: Stack, stub: metering_pb2_grpc.MeteringServiceAsyncStub) -> float:
    subscriptions = [f"sub_batch_{n}" for n in range(BATCH_CALLERS)]
    for subscription in subscriptions:
        await subscribe(stub, subscription)

    async def caller(subscription: str) -> None:
        for n in range(BATCHES // BATCH_CALLERS):
            events = [_event(subscription, f"b{n}-{i}") for i in range(BATCH_SIZE)]
            response = await stub.BatchRecordUsageEvents(
                pb.BatchRecordUsageEventsRequest(events=events), metadata=METADATA
            )
            assert response.accepted_count == BATCH_SIZE

    started = time.perf_counter()
    await asyncio.gather(*(caller(s) for s in subscriptions))
    elapsed = time.perf_counter() - started
    for subscription in subscriptions:
        _check(
            "batch", await _stored(stack.dsn, subscription), BATCHES // BATCH_CALLERS * BATCH_SIZE
        )
    return BATCHES * BATCH_SIZE / elapsed


async def streams(
    stack: Stack, stub: metering_pb2_grpc.MeteringServiceAsyncStub
) -> tuple[float, float]:
    """(events/s into StreamUsageEvents, events/s into the echo server's stream) of STREAMS
    streams at once, each of STREAM_EVENTS events with their own idempotency keys, sent by h2load
    as fast as the server reads them (a Python client is slower than the server here)."""
    await subscribe(stub, "sub_stream")
    folder = Path(tempfile.mkdtemp(prefix="h2load-"))
    bodies = []
    for n in range(STREAMS):
        body = folder / f"stream-{n}.bin"
        events = (_event("sub_stream", f"s{n}-{i}") for i in range(STREAM_EVENTS))
        body.write_bytes(
            framed(pb.StreamUsageEventsRequest(event=e).SerializeToString() for e in events)
        )
        bodies.append(body)
    authorization = stack.credentials.authorization
    rate = await _h2load_streams(int(stack.metering.rsplit(":", 1)[1]), bodies, authorization)
    # Every event is stored once, or the run fails.
    _check("stream", await _stored(stack.dsn, "sub_stream"), STREAMS * STREAM_EVENTS)
    async with echo_server() as port:
        echo_rate = await _h2load_streams(port, bodies, authorization)
    return rate, echo_rate


async def copy_baseline(stack: Stack) -> float:
    """The same rows, COPYed by asyncpg in batches of the same size into a same-shaped table
    with the same unique key, each batch its own transaction."""
    connection = await asyncpg.connect(stack.dsn)
    try:
        await connection.execute(
            "CREATE TABLE public.copy_baseline (LIKE metering.usage_events INCLUDING DEFAULTS,"
            " UNIQUE (subscription_id, idempotency_key))"
        )
        now = datetime.now(UTC)
        started = time.perf_counter()
        for n in range(BATCHES):
            rows = [
                (
                    "sub_copy",
                    f"evt_{n}_{i}",
                    now,
                    MERCHANT,
                    "svc_bench",
                    "usr_bench",
                    "token_generated",
                    Decimal(QUANTITY),
                    None,
                    f"c{n}-{i}",
                    "{}",
                    now,
                )
                for i in range(BATCH_SIZE)
            ]
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "copy_baseline",
                    schema_name="public",
                    records=rows,
                    columns=COLUMNS,
                )
        return BATCHES * BATCH_SIZE / (time.perf_counter() - started)
    finally:
        await connection.close()


async def measure(stack: Stack) -> list[Figure]:
    async with open_channel(stack.metering, stack.credentials) as channel:
        stub = metering_pb2_grpc.MeteringServiceStub(channel)
        figures = await unary(stack, stub)
        batch_rate = await batches(stack, stub)
        stream_rate, echo_stream_rate = await streams(stack, stub)
    copy_rate = await copy_baseline(stack)
    target = ">= 100,000/s and >= 0.5 x COPY"
    return [
        *figures,
        Figure(
            "BatchRecordUsageEvents (1,000 per call)",
            batch_rate,
            "events/s",
            "asyncpg COPY",
            copy_rate,
            target,
            batch_rate >= 100_000 and batch_rate >= 0.5 * copy_rate,
        ),
        Figure(
            "StreamUsageEvents, 4 streams (h2load)",
            stream_rate,
            "events/s",
            "asyncpg COPY",
            copy_rate,
            target,
            stream_rate >= 100_000 and stream_rate >= 0.5 * copy_rate,
        ),
        Figure(
            "StreamUsageEvents vs an echo stream (4 streams, one message per event)",
            stream_rate,
            "events/s",
            "grpc.aio echo stream",
            echo_stream_rate,
        ),
    ]

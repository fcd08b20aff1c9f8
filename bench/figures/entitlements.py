"""Entitlements: CheckEntitlement under h2load, 64 calls in flight, next to GetUsageSummary of the
same subscription and event key under the same load (the baseline the issue names), and the
trivial grpc.aio echo server's ceiling; and what a hard limit costs ingestion.

The subscription holds a HARD limit of 10^12 on token_generated and 10,000 events of it
(BatchRecordUsageEvents). Before the load, one CheckEntitlement through a Python client must
answer exactly: used = 10,000 x 1.5, remaining = limit - used, WITHIN_LIMIT. h2load then sends
the same serialized request 20,000 times (4 connections x 16 streams); it counts any HTTP 200 as a
success, so a check afterwards must still answer exactly. The same load again with 4 calls in
flight (4 connections x 1 stream) shows the latency of a hot path that does not saturate
metering. The check is answered from metering's cache, re-read from the rollups at most once a
second (METERING_ENTITLEMENT_CACHE_SECONDS).

Ingestion: 40 batches of 1,000 events into a subscription with a hard limit on their key, 40 into
a prepaid-only one (credits of 10^12 USDC, a graduated charge of two tiers: every event priced
under the lock), and 40 into one with neither, one batch at a time, in turn; events/s of each,
and every total checked.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.figures import Figure, percentile
from bench.figures.ingestion import (
    METADATA,
    QUANTITY,
    echo_server,
    framed,
    h2load_unary,
    subscribe,
)
from bench.stack import Stack
from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from service_kit.channels import open_channel
from service_kit.proto_time import to_timestamp

LIMIT = Decimal(10) ** 12
EVENTS, BATCH = 10_000, 1_000
INGEST_BATCHES = 40
TARGET_P99_MS = 5.0


def _limited(key: str = "token_generated") -> list[pb.UsageLimit]:
    return [
        pb.UsageLimit(event_key=key, quantity=str(LIMIT), enforcement=pb.LIMIT_ENFORCEMENT_HARD)
    ]


def _events(subscription: str, count: int) -> list[pb.UsageEventInput]:
    return [
        pb.UsageEventInput(
            service_id="svc_bench",
            subscription_id=subscription,
            user_id="usr_bench",
            event_key="token_generated",
            quantity=QUANTITY,
        )
        for _ in range(count)
    ]


async def _record(
    stub: metering_pb2_grpc.MeteringServiceAsyncStub, subscription: str, count: int
) -> None:
    answer = await stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(events=_events(subscription, count)), metadata=METADATA
    )
    if answer.accepted_count != count:
        raise RuntimeError(f"{subscription}: {answer.rejected_count} events rejected")


async def _check_exact(
    stub: metering_pb2_grpc.MeteringServiceAsyncStub, request: pb.CheckEntitlementRequest
) -> None:
    answer = await stub.CheckEntitlement(request, metadata=METADATA)
    used = Decimal(QUANTITY) * EVENTS
    expected = (True, pb.ENTITLEMENT_REASON_WITHIN_LIMIT, used, LIMIT - used)
    found = (answer.allowed, answer.reason, Decimal(answer.used), Decimal(answer.remaining))
    if found != expected:
        raise AssertionError(f"CheckEntitlement answered {found}, expected {expected}")


def _prepaid() -> pb.PrepaidAllowance:
    tiers = [
        pb.PriceTier(up_to="1000000", unit_price="0.00001"),
        pb.PriceTier(unit_price="0.000008"),
    ]
    graduated = pb.PricedCharge(
        event_key="token_generated", model=pb.PRICING_MODEL_GRADUATED, tiers=tiers
    )
    return pb.PrepaidAllowance(credits=str(LIMIT), charges=[graduated])


async def _ingestion_rates(
    stub: metering_pb2_grpc.MeteringServiceAsyncStub,
) -> dict[str, float]:
    """Events/s into a subscription with a hard limit, a prepaid-only one, and one with
    neither, by subscription."""
    await subscribe(stub, "sub_ingest_limited", _limited())
    await subscribe(stub, "sub_ingest_prepaid", prepaid=_prepaid())
    await subscribe(stub, "sub_ingest_free")
    seconds = {"sub_ingest_limited": 0.0, "sub_ingest_prepaid": 0.0, "sub_ingest_free": 0.0}
    for _ in range(INGEST_BATCHES):
        for subscription in seconds:
            began = time.perf_counter()
            await _record(stub, subscription, BATCH)
            seconds[subscription] += time.perf_counter() - began
    events = INGEST_BATCHES * BATCH
    for subscription in seconds:
        summary = await stub.GetUsageSummary(
            pb.GetUsageSummaryRequest(
                subscription_id=subscription,
                event_key="token_generated",
                start_time=to_timestamp(datetime.now(UTC) - timedelta(days=2)),
                end_time=to_timestamp(datetime.now(UTC) + timedelta(days=1)),
            ),
            metadata=METADATA,
        )
        if Decimal(summary.summaries[0].value) != Decimal(QUANTITY) * events:
            raise AssertionError(f"{subscription}: stored {summary.summaries[0].value}")
    return {subscription: events / spent for subscription, spent in seconds.items()}


async def measure(stack: Stack) -> list[Figure]:
    port = int(stack.metering.rsplit(":", 1)[1])
    authorization = stack.credentials.authorization
    folder = Path(tempfile.mkdtemp(prefix="h2load-"))
    async with open_channel(stack.metering, stack.credentials) as channel:
        stub = metering_pb2_grpc.MeteringServiceStub(channel)
        await subscribe(stub, "sub_entitled", _limited())
        for _ in range(EVENTS // BATCH):
            await _record(stub, "sub_entitled", BATCH)
        check = pb.CheckEntitlementRequest(
            subscription_id="sub_entitled", event_key="token_generated"
        )
        await _check_exact(stub, check)
        now = datetime.now(UTC)
        summary = pb.GetUsageSummaryRequest(
            subscription_id="sub_entitled",
            event_key="token_generated",
            start_time=to_timestamp(now - timedelta(days=1, minutes=1)),
            end_time=to_timestamp(now + timedelta(days=29)),
        )
        bodies = {}
        for name, request in (("check", check), ("summary", summary)):
            bodies[name] = folder / f"{name}.bin"
            bodies[name].write_bytes(framed([request.SerializeToString()]))
        _, check_rate, checks = h2load_unary(
            port, bodies["check"], folder / "check-log", authorization, "CheckEntitlement"
        )
        _, summary_rate, summaries = h2load_unary(
            port, bodies["summary"], folder / "summary-log", authorization, "GetUsageSummary"
        )
        # A hot path with fewer calls in flight: 4 connections x 1.
        _, _, few = h2load_unary(
            port, bodies["check"], folder / "few-log", authorization, "CheckEntitlement", 1
        )
        # h2load counts failed calls as successes: the answer must still be exact.
        await _check_exact(stub, check)
        rates = await _ingestion_rates(stub)
    record = folder / "record.bin"
    record.write_bytes(
        framed(
            [pb.RecordUsageEventRequest(event=_events("sub_entitled", 1)[0]).SerializeToString()]
        )
    )
    async with echo_server() as echo_port:
        _, echo_rate, echoes = h2load_unary(echo_port, record, folder / "echo-log", authorization)
    p99 = percentile(checks, 0.99)
    return [
        Figure(
            "CheckEntitlement p99, c=64 (h2load)",
            p99,
            "ms",
            "GetUsageSummary p99",
            percentile(summaries, 0.99),
            f"<= {TARGET_P99_MS:g} ms",
            p99 <= TARGET_P99_MS,
        ),
        Figure(
            "CheckEntitlement p99, 4 in flight (h2load)",
            percentile(few, 0.99),
            "ms",
            "the same at 64 in flight",
            p99,
            f"<= {TARGET_P99_MS:g} ms",
            percentile(few, 0.99) <= TARGET_P99_MS,
        ),
        Figure(
            "CheckEntitlement p50",
            percentile(checks, 0.5),
            "ms",
            "GetUsageSummary p50",
            percentile(summaries, 0.5),
        ),
        Figure(
            "CheckEntitlement, c=64 (h2load)",
            check_rate,
            "checks/s",
            "GetUsageSummary",
            summary_rate,
        ),
        Figure(
            "CheckEntitlement p99 against the echo server",
            p99,
            "ms",
            "grpc.aio echo p99",
            percentile(echoes, 0.99),
        ),
        Figure(
            "CheckEntitlement against the echo server",
            check_rate,
            "checks/s",
            "grpc.aio echo",
            echo_rate,
        ),
        Figure(
            "BatchRecordUsageEvents under a hard limit",
            rates["sub_ingest_limited"],
            "events/s",
            "same without a limit",
            rates["sub_ingest_free"],
        ),
        Figure(
            "BatchRecordUsageEvents of a prepaid-only plan",
            rates["sub_ingest_prepaid"],
            "events/s",
            "same without a limit",
            rates["sub_ingest_free"],
        ),
    ]

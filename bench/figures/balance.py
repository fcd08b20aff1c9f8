"""The real-time balance, GetSubscriptionBalance, at 64 in flight; baseline: metering's
GetUsageSummary of the same subscriptions and windows, at 64 in flight, in the same run.

One service and a USAGE_BASED plan (0.000010 USDC per unit, monthly) through invoicing's API;
1,000 subscriptions in their current period (anchored 10 days ago, so it ends in about 20 days
and the scheduler leaves them alone), written directly as for the period close
(bench/figures/load.py): metering's replicas, 20 events each spread from the period start to
now, quantities alternating between a quarter and an eighth of an integer (so the price has 7
decimals and is rounded), the rollups, VACUUM ANALYZE, then invoicing's subscriptions. Half the
subscribers get a reported credit balance (`invoicing.credit_balances`, version 1, as
ReportCreditBalance stores it) of 0.001-0.097 USDC, above or below what they consumed.

A balance is one transaction in invoicing (the subscription, its plan, the credits), one
BatchGetUsageSummaries call to metering for the period so far, and the pricing. First CHECKED
subscriptions drawn at random are checked exactly: consumed = round(sum(quantity) x 0.000010, 6)
(half even) of their raw events in the period, credit_balance what was written, balance =
credit_balance - consumed. Then both calls, each from one grpc.aio channel, IN_FLIGHT at a time
on subscriptions drawn at random (the same sequences for both), are warmed up with WARMUP calls
and timed for SECONDS each in ROUNDS turns (5 s of one, 5 s of the other, twice, so that other
work on the machine weighs on both alike): throughput is the calls completed over their wall
time, p50 and p99 of all of them.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Awaitable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import asyncpg

from bench.figures import Figure, percentile, timed_calls
from bench.figures.load import load_current_period, subscriber_of, usage_based_plan
from bench.stack import MERCHANT, Stack
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from service_kit.channels import open_channel
from service_kit.proto_time import to_timestamp
from service_kit.tenancy import MERCHANT_METADATA_KEY

METADATA = ((MERCHANT_METADATA_KEY, MERCHANT),)
SUBSCRIPTIONS, EVENTS_EACH = 1_000, 20
UNIT_PRICE = Decimal("0.000010")
BASE_UNIT = Decimal("0.000001")
IN_FLIGHT, WARMUP, CHECKED = 64, 1_000, 50
# Each call's seconds, timed in ROUNDS turns of both calls.
SECONDS, ROUNDS = 10.0, 2
SEED = 17

_CREDIT_BALANCES = ("merchant_id", "user_id", "balance", "version", "update_time")
_USAGE = """
    SELECT coalesce(sum(quantity), 0) FROM metering.usage_events
    WHERE merchant_id = $1 AND subscription_id = $2 AND occurred_at >= $3 AND occurred_at < $4
"""


def _log(message: str) -> None:
    print(f"  balance: {message}", file=sys.stderr, flush=True)


def _quantities(index: int) -> tuple[Decimal, Decimal]:
    """The two quantities a subscription's events alternate between: totals differ, and an
    eighth priced at 0.000010 has 7 decimals."""
    return Decimal(index % 1000 + 1) / 4, Decimal(7 * index % 1000 + 1) / 8


def _credits(index: int) -> Decimal | None:
    """Half the subscribers hold 0.001-0.097 USDC (about what 20 events consume); the rest none."""
    return Decimal(index % 97 + 1) / 1000 if index % 4 < 2 else None


def _draws(seed: int) -> Iterator[int]:
    """Subscription indexes at random, without end; the same for the same seed."""
    draw = random.Random(seed)
    while True:
        yield draw.randrange(SUBSCRIPTIONS)


async def _copy_credits(connection: asyncpg.Connection, ids: Sequence[str]) -> None:
    """The credit balances reported to invoicing, version 1, as ReportCreditBalance keeps them."""
    now = datetime.now(UTC)
    async with connection.transaction():
        await connection.copy_records_to_table(
            "credit_balances",
            schema_name="invoicing",
            columns=_CREDIT_BALANCES,
            records=[
                (MERCHANT, subscriber_of(sid), credits, 1, now)
                for i, sid in enumerate(ids)
                if (credits := _credits(i)) is not None
            ],
        )
        await connection.execute("ANALYZE invoicing.credit_balances")


async def _check(
    stack: Stack,
    stub: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> None:
    """CHECKED subscriptions' balances exactly as their raw events and credits say."""
    connection = await asyncpg.connect(stack.dsn)
    try:
        for index in random.Random(SEED + 1).sample(range(SUBSCRIPTIONS), CHECKED):
            found = await stub.GetSubscriptionBalance(
                invoicing_pb2.GetSubscriptionBalanceRequest(subscription_id=ids[index]),
                metadata=METADATA,
            )
            used = await connection.fetchval(_USAGE, MERCHANT, ids[index], start, end)
            consumed = (used * UNIT_PRICE).quantize(BASE_UNIT, ROUND_HALF_EVEN)
            credits = _credits(index) or Decimal(0)
            want = (credits, consumed, credits - consumed, start, end)
            got = (
                Decimal(found.credit_balance),
                Decimal(found.consumed),
                Decimal(found.balance),
                found.period_start.ToDatetime(tzinfo=UTC),
                found.period_end.ToDatetime(tzinfo=UTC),
            )
            if got != want:
                raise AssertionError(
                    f"{ids[index]}: (credits, consumed, balance, period) {got}, expected {want}"
                )
    finally:
        await connection.close()


def _summarize(name: str, latencies: list[float], seconds: float) -> tuple[float, float]:
    """Answers the calls per second and p99."""
    latencies.sort()
    rate, p99 = len(latencies) / seconds, percentile(latencies, 0.99)
    _log(
        f"{name}: {len(latencies):,} calls in {seconds:.1f} s, {rate:,.0f}/s,"
        f" p50 {percentile(latencies, 0.5):.2f} ms, p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms"
    )
    return rate, p99


async def measure(stack: Stack) -> list[Figure]:
    service, plan = await usage_based_plan(stack, "balance bench", UNIT_PRICE)
    ids = [f"sub_balance_{i:04d}" for i in range(SUBSCRIPTIONS)]
    began = time.perf_counter()
    start, end = await load_current_period(stack, service, plan, ids, EVENTS_EACH, _quantities)
    connection = await asyncpg.connect(stack.dsn)
    try:
        await _copy_credits(connection, ids)
    finally:
        await connection.close()
    _log(
        f"{SUBSCRIPTIONS:,} subscriptions, {SUBSCRIPTIONS * EVENTS_EACH:,} events loaded in"
        f" {time.perf_counter() - began:.1f} s"
    )
    balances = [invoicing_pb2.GetSubscriptionBalanceRequest(subscription_id=sid) for sid in ids]
    summaries = [
        metering_pb2.GetUsageSummaryRequest(
            subscription_id=sid, start_time=to_timestamp(start), end_time=to_timestamp(end)
        )
        for sid in ids
    ]
    async with (
        open_channel(stack.invoicing, stack.credentials) as invoicing_channel,
        open_channel(stack.metering, stack.credentials) as metering_channel,
    ):
        invoicing = invoicing_pb2_grpc.InvoicingServiceStub(invoicing_channel)
        metering = metering_pb2_grpc.MeteringServiceStub(metering_channel)

        def balance(index: int) -> Awaitable[invoicing_pb2.SubscriptionBalance]:
            return invoicing.GetSubscriptionBalance(balances[index], metadata=METADATA)

        def summary(index: int) -> Awaitable[metering_pb2.GetUsageSummaryResponse]:
            return metering.GetUsageSummary(summaries[index], metadata=METADATA)

        await _check(stack, invoicing, ids, start, end)
        _log(f"checked {CHECKED} balances exactly against their raw events and credits")
        timed: dict[str, tuple[list[float], float]] = {"summary": ([], 0.0), "balance": ([], 0.0)}
        for call in (summary, balance):
            await timed_calls(call, itertools.islice(_draws(SEED + 2), WARMUP), IN_FLIGHT)
        # In turns, so that other work on the machine weighs on both alike.
        for turn in range(ROUNDS):
            for name, call in (("summary", summary), ("balance", balance)):
                latencies, seconds = await timed_calls(
                    call, _draws(SEED + turn), IN_FLIGHT, SECONDS / ROUNDS
                )
                timed[name] = (timed[name][0] + latencies, timed[name][1] + seconds)
                _log(f"turn {turn + 1}, {name}: {len(latencies) / seconds:,.0f}/s")
        summary_rate, summary_p99 = _summarize("GetUsageSummary", *timed["summary"])
        balance_rate, balance_p99 = _summarize("GetSubscriptionBalance", *timed["balance"])
    return [
        Figure(
            f"real-time balance p99 at {IN_FLIGHT} in flight",
            balance_p99,
            "ms",
            baseline="GetUsageSummary p99 (same subscriptions, windows, in flight)",
            baseline_value=summary_p99,
        ),
        Figure(
            "real-time balances per second",
            balance_rate,
            "balances/s",
            baseline="GetUsageSummary calls/s",
            baseline_value=summary_rate,
        ),
    ]

"""Usage alerts: one plan-level alert crossed by all of its 1,000 subscriptions at once, from its
creation to the last crossing recorded; baseline: the metering read such a pass makes, alone.

One USAGE_BASED plan and 1,000 subscriptions in their current period with 20 events each so far,
written directly (bench/figures/load.py, as for the balance figure); the quantities alternate
between a quarter of an integer and 1 + (n + 1) x 10^-12 for the n-th subscription, so every
total carries 12 fractional digits. Then one alert through CreateUsageAlert:
USAGE_QUANTITY of the events' key on the plan, its threshold below every total. Invoicing's
background pass (every INVOICING_ALERT_CHECK_SECONDS, 1 s, after a pass with nothing to record)
finds the watched subscriptions, reads their usage from metering in transactions of ALERT_BATCH
and records each crossing with its webhook. From the CreateUsageAlert answer, the crossings of
the alert are counted every POLL seconds until all are there: the figure is those seconds. The
crossings appear a batch at a time; from the first batch seen to the last, per batch, is the
pass's work without its wait for the next pass (up to the interval after the alert's creation).
Then, after two more passes, exactly: one crossing per subscription, its value the sum of the
subscription's raw events in the period (SQL over metering.usage_events, which must also be what
was loaded), and one usage.threshold_crossed webhook per subscription in invoicing's outbox with
the same value.

Baseline, in the same run, before the alert exists: BatchGetUsageSummaries of the same windows
(each subscription's period start to its end, as the pass asks) in calls of ALERT_BATCH, one
after the other from one grpc.aio channel, the best of ROUNDS rounds; each answer checked.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import asyncpg

from bench.figures import Figure
from bench.figures.load import EVENT_KEY, load_current_period, subscriber_of, usage_based_plan
from bench.stack import MERCHANT, Stack
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from invoicing_svc.domain.alerts import USAGE_CROSSED
from invoicing_svc.service_layer.alerts import ALERT_BATCH
from service_kit.channels import open_channel
from service_kit.proto_time import to_timestamp
from service_kit.tenancy import MERCHANT_METADATA_KEY

METADATA = ((MERCHANT_METADATA_KEY, MERCHANT),)
SUBSCRIPTIONS, EVENTS_EACH = 1_000, 20
UNIT_PRICE = Decimal("0.000010")
# Below every total: the least is 10 x 0.25 + 10 x 1.000000000001.
THRESHOLD = Decimal(10)
ROUNDS = 3
POLL, TIMEOUT = 0.05, 120.0
# After the last crossing, long enough for two more passes that must record and send nothing.
SETTLE = 2.5

_TOTALS = """
    SELECT subscription_id, sum(quantity) AS total, count(*) AS events
    FROM metering.usage_events
    WHERE merchant_id = $1 AND subscription_id = ANY($2::text[]) AND event_key = $3
        AND occurred_at >= $4 AND occurred_at < $5
    GROUP BY subscription_id
"""
_COUNT = "SELECT count(*) FROM invoicing.usage_alert_crossings WHERE alert_id = $1"
_CROSSINGS = """
    SELECT subscription_id, user_id, event_type, threshold, value, period_start, period_end
    FROM invoicing.usage_alert_crossings WHERE alert_id = $1
"""
_WEBHOOKS = """
    SELECT payload->'data'->>'subscriptionId' AS subscription_id,
        payload->'data'->>'value' AS value
    FROM invoicing.outbox
    WHERE topic = 'webhook.event' AND payload->>'type' = $2
        AND payload->'data'->>'alertId' = $1
"""


def _log(message: str) -> None:
    print(f"  alerts: {message}", file=sys.stderr, flush=True)


def _quantities(index: int) -> tuple[Decimal, Decimal]:
    """A quarter of an integer, and 1 + (index + 1) x 10^-12: totals differ and have 12 places."""
    return Decimal(index % 997 + 1) / 4, 1 + Decimal(index + 1).scaleb(-12)


def _loaded(index: int) -> Decimal:
    """What the loader wrote for the index-th subscription: its quantities in turn."""
    quantities = _quantities(index)
    return sum((quantities[i % len(quantities)] for i in range(EVENTS_EACH)), Decimal(0))


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def _raw_totals(
    connection: asyncpg.Connection, ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, Decimal]:
    """Each subscription's sum of its raw events in the period, which must be what was loaded."""
    rows = await connection.fetch(_TOTALS, MERCHANT, list(ids), EVENT_KEY, start, end)
    totals = {row["subscription_id"]: row["total"] for row in rows}
    counts = {row["subscription_id"]: row["events"] for row in rows}
    expected = {sid: _loaded(i) for i, sid in enumerate(ids)}
    if totals != expected or set(counts.values()) != {EVENTS_EACH}:
        wrong = sorted(s for s in expected if totals.get(s) != expected[s])
        raise AssertionError(f"raw events differ from what was loaded for {wrong[:5]}")
    if min(totals.values()) <= THRESHOLD:
        raise AssertionError(f"the threshold {THRESHOLD} is not below every total")
    return totals


async def _read_usage(
    stub: metering_pb2_grpc.MeteringServiceAsyncStub,
    windows: Sequence[metering_pb2.GetUsageSummaryRequest],
    totals: Mapping[str, Decimal],
) -> float:
    """The seconds of the pass's metering reads: the windows in calls of ALERT_BATCH, in turn;
    every answer must be the subscription's raw total."""
    answers: list[metering_pb2.GetUsageSummaryResponse] = []
    began = time.perf_counter()
    for first in range(0, len(windows), ALERT_BATCH):
        response = await stub.BatchGetUsageSummaries(
            metering_pb2.BatchGetUsageSummariesRequest(
                requests=windows[first : first + ALERT_BATCH]
            ),
            metadata=METADATA,
        )
        answers.extend(response.responses)
    seconds = time.perf_counter() - began
    for window, answer in zip(windows, answers, strict=True):
        found = {s.event_key: Decimal(s.value) for s in answer.summaries}
        if found != {EVENT_KEY: totals[window.subscription_id]}:
            raise AssertionError(f"{window.subscription_id}: metering answered {found}")
    return seconds


async def _crossed(connection: asyncpg.Connection, alert_id: str) -> tuple[float, float]:
    """Seconds from now until every subscription's crossing of the alert is recorded, and the
    seconds a batch of ALERT_BATCH took after the first crossings were seen (the pass's work
    without its wait for the pass)."""
    began = time.perf_counter()
    seen: dict[int, float] = {}
    while True:
        count = await connection.fetchval(_COUNT, alert_id)
        elapsed = time.perf_counter() - began
        seen.setdefault(count, elapsed)
        if count >= SUBSCRIPTIONS:
            break
        if elapsed > TIMEOUT:
            raise AssertionError(f"{count} of {SUBSCRIPTIONS} crossings after {elapsed:.0f} s")
        await asyncio.sleep(POLL)
    _log("crossings first seen: " + ", ".join(f"{c:,} at {s:.2f} s" for c, s in seen.items()))
    first = min(c for c in seen if c > 0)
    if first == SUBSCRIPTIONS:
        raise AssertionError(f"all {SUBSCRIPTIONS} crossings appeared in one poll")
    return elapsed, (elapsed - seen[first]) / ((SUBSCRIPTIONS - first) / ALERT_BATCH)


async def _check(
    connection: asyncpg.Connection,
    alert_id: str,
    totals: Mapping[str, Decimal],
    start: datetime,
    end: datetime,
) -> None:
    """One crossing and one webhook per subscription, each with its raw total; nothing more."""
    crossings = await connection.fetch(_CROSSINGS, alert_id)
    found = {
        row["subscription_id"]: (
            row["user_id"],
            row["event_type"],
            row["threshold"],
            row["value"],
            row["period_start"],
            row["period_end"],
        )
        for row in crossings
    }
    expected = {
        sid: (subscriber_of(sid), USAGE_CROSSED, THRESHOLD, total, start, end)
        for sid, total in totals.items()
    }
    if len(crossings) != SUBSCRIPTIONS or found != expected:
        wrong = sorted(s for s in expected if found.get(s) != expected[s])
        raise AssertionError(
            f"{len(crossings)} crossings recorded; wrong or missing: "
            + ", ".join(f"{s} {found.get(s)} (expected {expected[s]})" for s in wrong[:3])
        )
    webhooks = await connection.fetch(_WEBHOOKS, alert_id, USAGE_CROSSED)
    sent = {row["subscription_id"]: Decimal(row["value"]) for row in webhooks}
    if len(webhooks) != SUBSCRIPTIONS or sent != totals:
        raise AssertionError(
            f"{len(webhooks)} {USAGE_CROSSED} webhooks in the outbox for {len(sent)}"
            f" subscriptions, expected one for each of {SUBSCRIPTIONS} with its total"
        )


async def measure(stack: Stack) -> list[Figure]:
    service, plan = await usage_based_plan(stack, "alerts bench", UNIT_PRICE)
    ids = [f"sub_alerts_{i:04d}" for i in range(SUBSCRIPTIONS)]
    began = time.perf_counter()
    start, end = await load_current_period(stack, service, plan, ids, EVENTS_EACH, _quantities)
    _log(
        f"{SUBSCRIPTIONS:,} subscriptions, {SUBSCRIPTIONS * EVENTS_EACH:,} events loaded in"
        f" {time.perf_counter() - began:.1f} s; load average {_load_average()}"
    )
    windows = [
        metering_pb2.GetUsageSummaryRequest(
            subscription_id=sid, start_time=to_timestamp(start), end_time=to_timestamp(end)
        )
        for sid in ids
    ]
    connection = await asyncpg.connect(stack.dsn)
    try:
        totals = await _raw_totals(connection, ids, start, end)
        async with open_channel(stack.metering, stack.credentials) as channel:
            metering = metering_pb2_grpc.MeteringServiceStub(channel)
            rounds = [await _read_usage(metering, windows, totals) for _ in range(ROUNDS)]
        read, calls = min(rounds), len(windows) // ALERT_BATCH
        _log(
            f"usage read ({calls} x BatchGetUsageSummaries of"
            f" {ALERT_BATCH}): " + ", ".join(f"{s:.3f}" for s in rounds) + " s"
        )
        async with open_channel(stack.invoicing, stack.credentials) as channel:
            invoicing = invoicing_pb2_grpc.InvoicingServiceStub(channel)
            alert = await invoicing.CreateUsageAlert(
                invoicing_pb2.CreateUsageAlertRequest(
                    alert=invoicing_pb2.UsageAlert(
                        plan_id=plan,
                        kind=invoicing_pb2.USAGE_ALERT_KIND_USAGE_QUANTITY,
                        event_key=EVENT_KEY,
                        threshold=str(THRESHOLD),
                    ),
                    request_id="bench-alerts",
                ),
                metadata=METADATA,
            )
        seconds, per_batch = await _crossed(connection, alert.id)
        _log(
            f"{SUBSCRIPTIONS:,} crossings in {seconds:.2f} s ({SUBSCRIPTIONS / seconds:,.0f}/s),"
            f" {seconds / read:.1f} x the read; a batch of {ALERT_BATCH} after the first"
            f" {per_batch:.3f} s; load average {_load_average()}"
        )
        await asyncio.sleep(SETTLE)
        await _check(connection, alert.id, totals, start, end)
        _log(f"checked {SUBSCRIPTIONS:,} crossings and their webhooks exactly")
    finally:
        await connection.close()
    return [
        Figure(
            f"alert pass, {SUBSCRIPTIONS:,} subscriptions crossing (creation to last recorded)",
            seconds,
            "s",
            baseline=(
                f"their usage read ({SUBSCRIPTIONS // ALERT_BATCH} x BatchGetUsageSummaries"
                f" of {ALERT_BATCH})"
            ),
            baseline_value=read,
        ),
        Figure(
            f"the same pass, a batch of {ALERT_BATCH} after the first crossings were seen",
            per_batch,
            "s",
            baseline=f"one BatchGetUsageSummaries of {ALERT_BATCH} (that read / {calls})",
            baseline_value=read / calls,
        ),
    ]

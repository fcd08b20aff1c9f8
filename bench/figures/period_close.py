"""Period close of 10,000 subscriptions with 1,000,000 events; baseline: the same aggregation as
one SQL statement; target: <= 60 s.

One service and a USAGE_BASED plan (0.000010 USDC per unit, monthly) are created through
invoicing's gRPC API. The subscriptions and their usage are written directly, since checking out
10,000 subscriptions and recording 1,000,000 events through the API would take minutes:
1. metering's replicas (`metering.subscriptions`) and 100 events per subscription, evenly spread
   over its period, quantities integers (so `amount x quantity` never needs rounding and SQL's
   half-away-from-zero `round` agrees with the services' HALF_EVEN), with their rollups, in one
   transaction (bench/figures/load.py); then VACUUM ANALYZE, which cannot run in a transaction,
   and a CHECKPOINT;
2. then, in a second transaction, the 10,000 rows of `invoicing.subscriptions` (ACTIVE, anchored
   32 days ago, period 0 ending one month after the anchor, so it ended days ago, well past the
   one-hour grace), analyzed before the commit. The scheduler sees no subscription before its
   usage is in place.
The clock starts at that commit; invoicing's own scheduler (one pass a second; each transaction
claims 250 due subscriptions, pushes their next states to metering in one
BatchUpsertSubscriptionStates call and reads their usage in one BatchGetUsageSummaries call)
closes the periods. The figure is the time until all 10,000 invoices exist (polled every 0.5 s);
then every invoice amount is checked against round(sum(quantity) x 0.000010, 6) of its
subscription's raw events. The closes write outbox messages (metering and settlement pushes,
webhooks) that invoicing's relays deliver meanwhile and afterwards: two more figures are the
time from the last invoice until the outbox holds none undelivered (polled every 0.5 s, given up
after 600 s with what is left printed), and the close's messages per second from the first one
written to the last one delivered (so bound by the close itself when the relays keep up).

The baseline is that aggregation as one SQL statement over the same events, each of two forms
run twice, the faster second run counting: `SELECT subscription_id, sum(quantity) ... WHERE
subscription_id = ANY(these 10,000) GROUP BY subscription_id` (fastest alone, but it scans
whole partitions, with the other figures' events in a full run, e.g. the 10,000,000 of
summaries.py) and a sum per subscription through the (subscription_id, ...) index.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from bench.figures import Figure
from bench.figures.load import (
    build_rollups,
    copy_events,
    copy_invoicing_subscriptions,
    copy_metering_replicas,
    ensure_partitions,
    spread_events,
    subscriber_of,
    usage_based_plan,
    vacuum_analyze,
)
from bench.stack import MERCHANT, Stack
from invoicing_svc.domain.model import BillingInterval
from invoicing_svc.domain.periods import period_bounds

SUBSCRIPTIONS, EVENTS_EACH = 10_000, 100
EVENTS = SUBSCRIPTIONS * EVENTS_EACH
UNIT_PRICE = Decimal("0.000010")
UNITS = [Decimal(units) for units in range(1, 1001)]
POLL_SECONDS, GIVE_UP_SECONDS, TARGET_SECONDS = 0.5, 600.0, 60.0
_UNDELIVERED = "SELECT count(*) FROM invoicing.outbox WHERE delivered_time IS NULL"
_RELAYED = """
    SELECT count(delivered_time), extract(epoch FROM max(delivered_time) - min(create_time))
    FROM invoicing.outbox WHERE merchant_id = $1 AND create_time >= $2
"""

_INVOICED = """
    SELECT count(*) FROM invoicing.invoices
    WHERE merchant_id = $1 AND service_id = $2 AND period_start IS NOT NULL
"""

# Per subscription, the invoiced amount against its raw events priced in SQL.
_CHECK = """
    WITH expected AS (
        SELECT subscription_id, round(sum(quantity) * $3, 6) AS amount
        FROM metering.usage_events
        WHERE merchant_id = $1 AND subscription_id = ANY($4::text[])
        GROUP BY subscription_id
    ), billed AS (
        SELECT subscription_id, amount FROM invoicing.invoices
        WHERE merchant_id = $1 AND service_id = $2 AND period_start IS NOT NULL
    )
    SELECT count(*) FILTER (WHERE e.amount IS DISTINCT FROM b.amount) AS wrong,
        sum(b.amount) AS billed, sum(e.amount) AS expected
    FROM expected e FULL JOIN billed b USING (subscription_id)
"""

# The baseline in two forms, the faster counts: GROUP BY scans whole partitions, which also hold
# the other figures' events in a full run; the per-subscription form reads these events only.
_BASELINES = (
    """SELECT subscription_id, sum(quantity) FROM metering.usage_events
    WHERE merchant_id = $1 AND subscription_id = ANY($2::text[])
    GROUP BY subscription_id""",
    """SELECT s.id, (SELECT sum(e.quantity) FROM metering.usage_events e
        WHERE e.merchant_id = $1 AND e.subscription_id = s.id)
    FROM unnest($2::text[]) AS s(id)""",
)


def _log(message: str) -> None:
    print(f"  period_close: {message}", file=sys.stderr, flush=True)


def _units(index: int) -> tuple[Decimal, Decimal]:
    """The two quantities a subscription's events alternate between: totals differ."""
    return UNITS[index % 1000], UNITS[7 * index % 1000]


async def _load(
    stack: Stack, service: str, plan: str, ids: list[str], start: datetime, end: datetime
) -> None:
    """Metering's replicas, events and rollups; then the invoicing subscriptions, committed."""
    await ensure_partitions(stack.database_url, start, end)
    connection = await asyncpg.connect(stack.dsn)
    try:
        began = time.perf_counter()
        async with connection.transaction():
            await copy_metering_replicas(connection, MERCHANT, service, ids, start, end)
            events = itertools.chain.from_iterable(
                spread_events(
                    MERCHANT, service, sid, subscriber_of(sid), EVENTS_EACH, start, end, _units(i)
                )
                for i, sid in enumerate(ids)
            )
            await copy_events(connection, events)
            copied = time.perf_counter() - began
            _log(f"COPY of {EVENTS:,} events: {copied:.1f} s")
            began = time.perf_counter()
            await build_rollups(connection, MERCHANT, ids)
            _log(f"rollups: {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        await vacuum_analyze(connection)
        _log(f"VACUUM ANALYZE, CHECKPOINT: {time.perf_counter() - began:.1f} s")
        async with connection.transaction():
            await copy_invoicing_subscriptions(connection, MERCHANT, service, plan, ids, start, end)
            await connection.execute("ANALYZE invoicing.subscriptions")
    finally:
        await connection.close()


async def _wait_for_invoices(connection: asyncpg.Connection, service: str) -> float:
    """Seconds until every subscription has its period invoice."""
    began = time.perf_counter()
    reported = began
    while True:
        invoiced = await connection.fetchval(_INVOICED, MERCHANT, service)
        elapsed = time.perf_counter() - began
        if invoiced >= SUBSCRIPTIONS:
            return elapsed
        if elapsed > GIVE_UP_SECONDS:
            raise TimeoutError(
                f"{invoiced:,} of {SUBSCRIPTIONS:,} periods closed in {elapsed:.0f} s"
            )
        if time.perf_counter() - reported >= 10:
            reported = time.perf_counter()
            _log(f"{invoiced:,} periods closed after {elapsed:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


async def _wait_for_outbox(connection: asyncpg.Connection) -> tuple[float, int]:
    """Seconds until invoicing's outbox has nothing undelivered (or GIVE_UP_SECONDS), and how
    many messages are left then."""
    began = time.perf_counter()
    reported = began
    while True:
        left = int(await connection.fetchval(_UNDELIVERED))
        elapsed = time.perf_counter() - began
        if left == 0 or elapsed > GIVE_UP_SECONDS:
            return elapsed, left
        if time.perf_counter() - reported >= 10:
            reported = time.perf_counter()
            _log(f"{left:,} outbox messages undelivered after {elapsed:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


async def _timed_twice(connection: asyncpg.Connection, query: str, ids: list[str]) -> float:
    """Seconds of the second of two runs (the first warms the cache)."""
    for _ in range(2):
        began = time.perf_counter()
        rows = await connection.fetch(query, MERCHANT, ids)
        seconds = time.perf_counter() - began
    assert len(rows) == SUBSCRIPTIONS
    return seconds


async def measure(stack: Stack) -> list[Figure]:
    service, plan = await usage_based_plan(stack, "period close bench", UNIT_PRICE)
    ids = [f"sub_close_{i:05d}" for i in range(SUBSCRIPTIONS)]
    start = datetime.now(UTC) - timedelta(days=32)
    end = period_bounds(start, BillingInterval.MONTH, 1, 0)[1]
    began = time.perf_counter()
    await _load(stack, service, plan, ids, start, end)
    loaded, ago = time.perf_counter() - began, datetime.now(UTC) - end
    closing = datetime.now(UTC)
    _log(f"loaded in {loaded:.1f} s; the periods ended {ago} ago")
    connection = await asyncpg.connect(stack.dsn)
    try:
        seconds = await _wait_for_invoices(connection, service)
        _log(f"{SUBSCRIPTIONS:,} periods closed in {seconds:.1f} s")
        backlog = int(await connection.fetchval(_UNDELIVERED))
        _log(f"outbox messages not yet delivered: {backlog:,}")
        drain, left = await _wait_for_outbox(connection)
        relayed = await connection.fetchrow(_RELAYED, MERCHANT, closing)
        assert relayed is not None
        messages, relay_seconds = relayed[0], float(relayed[1])
        _log(
            f"outbox empty {drain:.1f} s after the last invoice ({left:,} left); the close's"
            f" {messages:,} delivered messages relayed in {relay_seconds:.1f} s from the first"
            " written"
        )
        row = await connection.fetchrow(_CHECK, MERCHANT, service, UNIT_PRICE, ids)
        assert row is not None
        expected = sum(
            (sum(_units(i)) * (EVENTS_EACH // 2) * UNIT_PRICE for i in range(SUBSCRIPTIONS)),
            Decimal(0),
        )
        if row["wrong"] or row["billed"] != expected or row["expected"] != expected:
            raise AssertionError(
                f"{row['wrong']} invoices differ from their events; billed {row['billed']}, "
                f"priced in SQL {row['expected']}, loaded {expected}"
            )
        baseline = min([await _timed_twice(connection, query, ids) for query in _BASELINES])
    finally:
        await connection.close()
    return [
        Figure(
            f"period close, {SUBSCRIPTIONS:,} subscriptions / {EVENTS:,} events",
            seconds,
            "s",
            baseline="one SQL aggregation",
            baseline_value=baseline,
            target=f"<= {TARGET_SECONDS:.0f} s",
            met=seconds <= TARGET_SECONDS,
        ),
        Figure(
            "periods closed per second",
            SUBSCRIPTIONS / seconds,
            "periods/s",
            baseline="one SQL aggregation",
            baseline_value=SUBSCRIPTIONS / baseline,
            target=f">= {SUBSCRIPTIONS / TARGET_SECONDS:.0f} /s",
            met=seconds <= TARGET_SECONDS,
        ),
        Figure(
            f"outbox empty after the last invoice ({backlog:,} undelivered then"
            + (f", {left:,} left" if left else "")
            + ")",
            drain,
            "s",
        ),
        Figure(
            f"close's {messages:,} outbox messages relayed per second",
            messages / relay_seconds,
            "messages/s",
        ),
    ]

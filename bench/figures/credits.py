"""Period close of 2,000 subscribers holding prepaid credits; baseline: 2,000 without credits,
closed by the same scheduler pass.

Two services, each with the same USAGE_BASED plan (0.000010 USDC per unit, monthly), created
through invoicing's API, one per group so that the groups are counted apart. Their usage is
written directly, as for period_close.py (bench/figures/load.py): metering's replicas and 20
events per subscription, integer quantities alternating between two per subscription, with their
rollups, then VACUUM ANALYZE. Each credited subscriber then gets one promotional grant through
settlement's CreateCreditGrant (16 in flight), alternately half and twice the invoice its usage
prices (so half of the invoices are paid whole and half partly), and the set-up waits until
settlement's outbox has reported every balance to invoicing (`invoicing.credit_balances`), so
that the close sees who holds credits. Only then are the 4,000 rows of `invoicing.subscriptions`
committed, in one transaction.

The scheduler (CLOSE_BATCH = 250 a transaction, ordered by period end) takes the groups in
turn: the uncredited group's periods end one second before the credited group's (both ended
days ago), so its 8 transactions come first and the credited group's 8 follow in the same pass,
each with one ApplyCredits call to settlement. A group's time is its own: the uncredited one's
from the start of the close (the earliest invoice's create_time, the close's clock) until all
its invoices exist, the credited one's from then until all of its exist (polled every 0.5 s).
Then every invoice is checked exactly against its loaded usage and its grant, and settlement's
grants against what the invoices say credits paid.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Sequence
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
from billing.settlement.v1 import settlement_pb2, settlement_pb2_grpc
from invoicing_svc.domain.model import BillingInterval
from invoicing_svc.domain.periods import period_bounds
from service_kit.channels import open_channel
from service_kit.tenancy import MERCHANT_METADATA_KEY

METADATA = ((MERCHANT_METADATA_KEY, MERCHANT),)
SUBSCRIPTIONS, EVENTS_EACH = 2_000, 20
UNIT_PRICE = Decimal("0.000010")
UNITS = [Decimal(units) for units in range(1, 1001)]
GRANTS_IN_FLIGHT = 16
POLL_SECONDS, GIVE_UP_SECONDS = 0.5, 300.0
CREDITS_LINE = "Credits applied"

_REPORTED = """
    SELECT count(*), coalesce(sum(balance), 0) FROM invoicing.credit_balances
    WHERE merchant_id = $1 AND user_id = ANY($2::text[]) AND balance > 0
"""
_INVOICED = """
    SELECT count(*) FILTER (WHERE service_id = $2), count(*) FILTER (WHERE service_id = $3),
        min(create_time)
    FROM invoicing.invoices
    WHERE merchant_id = $1 AND service_id IN ($2, $3) AND period_start IS NOT NULL
"""
# Each invoice of the two services with its "Credits applied" lines.
_INVOICES = """
    SELECT i.service_id, i.user_id, i.status, i.amount, i.credits_applied,
        array_remove(array_agg(l.amount ORDER BY l.line_number), NULL) AS credit_lines
    FROM invoicing.invoices i
    LEFT JOIN invoicing.invoice_lines l
        ON l.invoice_id = i.id AND l.description = $4
    WHERE i.merchant_id = $1 AND i.service_id IN ($2, $3) AND i.period_start IS NOT NULL
    GROUP BY i.id
"""
_GRANTS = """
    SELECT count(*), sum(amount), sum(remaining) FROM settlement.credit_grants
    WHERE merchant_id = $1 AND user_id = ANY($2::text[])
"""
_APPLIED = """
    SELECT sum(credits_applied) FROM invoicing.invoices
    WHERE merchant_id = $1 AND service_id = $2 AND period_start IS NOT NULL
"""

# The close's transactions (an invoice's create_time is its transaction's clock) and when
# settlement began spending the credits of each (ApplyCredits' clock), for the log.
_BATCHES = """
    SELECT i.create_time, count(*), min(a.update_time) FROM invoicing.invoices i
    LEFT JOIN settlement.credit_applications a
        ON a.merchant_id = i.merchant_id AND a.invoice_id = i.id
    WHERE i.merchant_id = $1 AND i.service_id IN ($2, $3) AND i.period_start IS NOT NULL
    GROUP BY i.create_time ORDER BY i.create_time
"""


def _log(message: str) -> None:
    print(f"  credits: {message}", file=sys.stderr, flush=True)


def _units(index: int) -> tuple[Decimal, Decimal]:
    """The two quantities a subscription's events alternate between: totals differ."""
    return UNITS[index % 1000], UNITS[7 * index % 1000]


def _owed(index: int) -> Decimal:
    """What the period's usage prices, before credits (exact: integer quantities)."""
    return sum(_units(index), Decimal(0)) * (EVENTS_EACH // 2) * UNIT_PRICE


def _granted(index: int) -> Decimal:
    """Half the invoice (paid partly) or twice it (paid whole), in turn."""
    return _owed(index) / 2 if index % 2 == 0 else _owed(index) * 2


class _Group:
    """One service's subscriptions, their plan and their period."""

    def __init__(self, name: str, service: str, plan: str, start: datetime) -> None:
        self.ids = [f"sub_{name}_{i:04d}" for i in range(SUBSCRIPTIONS)]
        self.users = [subscriber_of(sid) for sid in self.ids]
        self.service, self.plan, self.start = service, plan, start
        self.end = period_bounds(start, BillingInterval.MONTH, 1, 0)[1]


async def _load_usage(connection: asyncpg.Connection, groups: Sequence[_Group]) -> None:
    """Metering's replicas, events and rollups of both groups, committed and analyzed."""
    async with connection.transaction():
        for group in groups:
            await copy_metering_replicas(
                connection, MERCHANT, group.service, group.ids, group.start, group.end
            )
            events = itertools.chain.from_iterable(
                spread_events(
                    MERCHANT,
                    group.service,
                    sid,
                    subscriber_of(sid),
                    EVENTS_EACH,
                    group.start,
                    group.end,
                    _units(i),
                )
                for i, sid in enumerate(group.ids)
            )
            await copy_events(connection, events)
            await build_rollups(connection, MERCHANT, group.ids)
    await vacuum_analyze(connection)


async def _grant(stack: Stack, users: Sequence[str]) -> None:
    """One promotional grant per subscriber, GRANTS_IN_FLIGHT calls at a time."""
    pending = iter(enumerate(users))
    async with open_channel(stack.settlement, stack.credentials) as channel:
        stub = settlement_pb2_grpc.SettlementServiceStub(channel)

        async def worker() -> None:
            for index, user in pending:
                await stub.CreateCreditGrant(
                    settlement_pb2.CreateCreditGrantRequest(
                        user_id=user,
                        amount=f"{_granted(index):f}",
                        description="credits bench",
                        request_id=f"bench-credits-{user}",
                    ),
                    metadata=METADATA,
                )

        await asyncio.gather(*(worker() for _ in range(GRANTS_IN_FLIGHT)))


async def _wait_for_reports(connection: asyncpg.Connection, users: Sequence[str]) -> None:
    """Until invoicing's replica says every credited subscriber holds exactly its grant."""
    began = time.perf_counter()
    granted = sum((_granted(i) for i in range(SUBSCRIPTIONS)), Decimal(0))
    while True:
        row = await connection.fetchrow(_REPORTED, MERCHANT, list(users))
        assert row is not None
        holders, balance = row
        if holders == SUBSCRIPTIONS and balance == granted:
            return
        if time.perf_counter() - began > GIVE_UP_SECONDS:
            raise TimeoutError(f"{holders:,} balances reported ({balance}, granted {granted})")
        await asyncio.sleep(POLL_SECONDS)


async def _commit_subscriptions(connection: asyncpg.Connection, groups: Sequence[_Group]) -> None:
    """Both groups' invoicing subscriptions in one transaction: due at once."""
    async with connection.transaction():
        for group in groups:
            await copy_invoicing_subscriptions(
                connection, MERCHANT, group.service, group.plan, group.ids, group.start, group.end
            )
        await connection.execute("ANALYZE invoicing.subscriptions")


async def _wait_for_invoices(
    connection: asyncpg.Connection, first: _Group, second: _Group
) -> tuple[datetime, datetime, datetime]:
    """When the close started (its first invoice's create_time), and when all of the first and
    of the second group's invoices existed (wall clock, at the poll that saw them)."""
    began = time.perf_counter()
    reported = began
    first_done: datetime | None = None
    while True:
        row = await connection.fetchrow(_INVOICED, MERCHANT, first.service, second.service)
        assert row is not None
        seen, now, elapsed = (row[0], row[1]), datetime.now(UTC), time.perf_counter() - began
        if first_done is None and seen[0] >= SUBSCRIPTIONS:
            first_done = now
        if first_done is not None and seen[1] >= SUBSCRIPTIONS:
            return row[2], first_done, now
        if elapsed > GIVE_UP_SECONDS:
            raise TimeoutError(f"{seen[0]:,} and {seen[1]:,} periods closed in {elapsed:.0f} s")
        if time.perf_counter() - reported >= 10:
            reported = time.perf_counter()
            _log(f"{seen[0]:,} and {seen[1]:,} periods closed after {elapsed:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


async def _check(connection: asyncpg.Connection, credited: _Group, uncredited: _Group) -> Decimal:
    """Every invoice exactly as its usage and its grant say, and settlement's grants holding
    what the invoices did not take; answers the credits applied."""
    rows = await connection.fetch(
        _INVOICES, MERCHANT, credited.service, uncredited.service, CREDITS_LINE
    )
    expected: dict[tuple[str, str], tuple[str, Decimal, Decimal, list[Decimal]]] = {}
    for group, holds in ((credited, True), (uncredited, False)):
        for index, user in enumerate(group.users):
            owed = _owed(index)
            applied = min(_granted(index), owed) if holds else Decimal(0)
            left = owed - applied
            status = "PAID" if left == 0 else "OPEN"
            expected[group.service, user] = (status, left, applied, [-applied] if holds else [])
    found = {
        (r["service_id"], r["user_id"]): (
            r["status"],
            r["amount"],
            r["credits_applied"],
            list(r["credit_lines"]),
        )
        for r in rows
    }
    wrong = [
        (key, found.get(key), want) for key, want in expected.items() if found.get(key) != want
    ]
    if wrong or len(rows) != len(expected):
        raise AssertionError(
            f"{len(wrong):,} invoices differ of {len(rows):,} (expected {len(expected):,});"
            f" first (found, expected): {wrong[:3]}"
        )
    row = await connection.fetchrow(_GRANTS, MERCHANT, credited.users)
    assert row is not None
    grants, granted, remaining = row
    applied_total = await connection.fetchval(_APPLIED, MERCHANT, credited.service)
    want_granted = sum((_granted(i) for i in range(SUBSCRIPTIONS)), Decimal(0))
    if grants != SUBSCRIPTIONS or granted != want_granted or remaining + applied_total != granted:
        raise AssertionError(
            f"{grants:,} grants of {granted} (loaded {want_granted}): {remaining} remaining"
            f" + {applied_total} applied on invoices != {granted}"
        )
    return Decimal(applied_total)


async def _log_batches(
    connection: asyncpg.Connection, credited: _Group, uncredited: _Group, done: datetime
) -> None:
    """Each close transaction's seconds (until the next began, the last until `done`), and
    for the credited ones how long before ApplyCredits began."""
    rows = await connection.fetch(_BATCHES, MERCHANT, credited.service, uncredited.service)
    ends = [row[0] for row in rows[1:]] + [done]
    parts = []
    for (began, count, applying), end in zip(rows, ends, strict=True):
        part = f"{count} in {(end - began).total_seconds():.2f} s"
        if applying is not None:
            part += f" (ApplyCredits at {(applying - began).total_seconds():.2f} s)"
        parts.append(part)
    _log("close transactions: " + "; ".join(parts))


async def measure(stack: Stack) -> list[Figure]:
    credited_ids = await usage_based_plan(stack, "credits bench: holding credits", UNIT_PRICE)
    uncredited_ids = await usage_based_plan(stack, "credits bench: without credits", UNIT_PRICE)
    start = datetime.now(UTC) - timedelta(days=32)
    credited = _Group("credited", *credited_ids, start)
    # One second earlier: the scheduler (ordered by period end) closes this group first.
    uncredited = _Group("uncredited", *uncredited_ids, start - timedelta(seconds=1))
    groups = (uncredited, credited)
    await ensure_partitions(stack.database_url, uncredited.start, credited.end)
    connection = await asyncpg.connect(stack.dsn)
    try:
        began = time.perf_counter()
        await _load_usage(connection, groups)
        _log(
            f"usage of {2 * SUBSCRIPTIONS:,} subscriptions loaded in"
            f" {time.perf_counter() - began:.1f} s"
        )
        began = time.perf_counter()
        await _grant(stack, credited.users)
        granted = time.perf_counter() - began
        await _wait_for_reports(connection, credited.users)
        _log(
            f"{SUBSCRIPTIONS:,} grants in {granted:.1f} s, all reported to invoicing"
            f" {time.perf_counter() - began:.1f} s after the first"
        )
        await _commit_subscriptions(connection, groups)
        committed = datetime.now(UTC)
        _log(f"the periods ended {committed - credited.end} ago")
        close_start, baseline_done, credited_done = await _wait_for_invoices(
            connection, uncredited, credited
        )
        baseline = (baseline_done - close_start).total_seconds()
        seconds = (credited_done - baseline_done).total_seconds()
        _log(
            f"close started {(close_start - committed).total_seconds():.2f} s after the commit;"
            f" {SUBSCRIPTIONS:,} without credits closed in {baseline:.1f} s, then"
            f" {SUBSCRIPTIONS:,} holding credits in {seconds:.1f} s"
        )
        applied = await _check(connection, credited, uncredited)
        await _log_batches(connection, credited, uncredited, credited_done)
        _log(f"checked: {applied} USDC of credits applied, every invoice and grant exact")
    finally:
        await connection.close()
    return [
        Figure(
            f"period close, {SUBSCRIPTIONS:,} subscribers holding credits",
            seconds,
            "s",
            baseline=f"{SUBSCRIPTIONS:,} without credits (same run)",
            baseline_value=baseline,
        ),
        Figure(
            "credits applied per second at period close",
            SUBSCRIPTIONS / seconds,
            "invoices/s",
            baseline="periods closed per second without credits",
            baseline_value=SUBSCRIPTIONS / baseline,
        ),
    ]

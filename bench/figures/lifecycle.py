"""Period close through a subscription's lifecycle: 1,000 subscriptions whose plan changed
mid-period (two parts, each read and priced apart) and 1,000 with a running discount, against
1,000 plain ones closed in the same scheduler pass.

One service and two USAGE_BASED plans of it (0.000010 and 0.000004 USDC a unit, monthly, no fixed
fee) and one coupon (12.5% off, FOREVER) are created through invoicing's gRPC API. The
subscriptions and their usage are written directly, as for period_close.py
(bench/figures/load.py): metering's replicas and 50 events per subscription evenly spread over its
period, integer quantities alternating between two per subscription (so every usage price is
exact; the discounts fall on every case of the rounding, `_Block.quantities`), with their
rollups, then VACUUM ANALYZE and a CHECKPOINT; then, in one transaction, the rows of
`invoicing.subscriptions` and `invoicing.discounts`:
- group A, 1,000 plain subscriptions on plan 1 (no `plan_segments`, no discount);
- group B, 1,000 subscriptions now on plan 2 whose `plan_segments` say they were on plan 1 until
  the middle of the period, the moment of their 26th event (which is the new plan's: a part is
  [start, end)), so that the close reads two usage windows for each and prices each part with
  its own plan, as after a ChangeSubscriptionPlan made then;
- group C, 1,000 plain subscriptions on plan 1, each with a running discount of the coupon
  (periods_left NULL: forever), as CreateDiscount leaves one (and the coupon's times_redeemed),
  so that the close reads them (`running_for`, locked) and prices a discount line on each
  invoice; an invoice leaves a FOREVER discount as it was, so `update_discounts` writes none;
- a lead-in block of 500 plain subscriptions on plan 1, closed first and not timed: the first
  transactions of a pass, while the relays have no outbox messages yet, are its fastest, and
  made the group closed first look cheaper (C/A 0.86-0.92 with C first, 1.60-2.06 with A first,
  0.96-1.11 in two runs of each order with the lead-in);
- a closing batch of CLOSE_BATCH plain subscriptions on plan 1, only to mark when the last
  measured block's transactions ended. The lead-in and the closing batch are checked like
  group A but not timed.

The scheduler claims due periods by period end (CLOSE_BATCH = 250 a transaction) and works them one
transaction after another in one pass. The periods (all ended days ago) end a second apart per
block of 500, in the order lead-in, A, B, C, C, B, A, then the closing batch, so the pass works the
blocks in that order, each in whole transactions (checked); the relays' work on earlier
transactions' outbox messages weighs on the three groups about alike (a drift linear in the block's
place adds the same to each group). An invoice's create_time is its transaction's clock, so a
block's time is from its first transaction's create_time to the next block's first (its
transactions, their commits and the next claim): no wait for the scheduler's pass and no polling in
the measurement. A group's time is the sum of its two blocks'. The figures are B's and C's times
next to A's. Then every invoice is checked exactly against the raw events in metering's database
(each line rounded once, half even): group A's one line round(sum(quantity) x 0.000010, 6); group
B's lines round(sum of the events before the change x 0.000010, 6) and round(sum at or after it x
0.000004, 6); group C's line as A's and the discount line -round(that x 0.125, 6), "Discount:
<coupon> (12.5% off)" (the only negative line of any invoice); each amount the sum of its lines;
those sums against what was loaded; and C's discounts still running.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import asyncpg

from bench.figures import Figure
from bench.figures.load import (
    INVOICING_SUBSCRIPTION_COLUMNS,
    build_rollups,
    copy_events,
    copy_metering_replicas,
    ensure_partitions,
    spread_events,
    subscriber_of,
    usage_based_plan,
    vacuum_analyze,
)
from bench.stack import MERCHANT, Stack
from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from invoicing_svc.domain.model import BillingInterval
from invoicing_svc.domain.periods import period_bounds
from invoicing_svc.service_layer.period_close import CLOSE_BATCH
from service_kit.channels import open_channel
from service_kit.ids import new_ids
from service_kit.tenancy import MERCHANT_METADATA_KEY

METADATA = ((MERCHANT_METADATA_KEY, MERCHANT),)
GROUP, BLOCK, EVENTS_EACH = 1_000, 500, 50
# The change: the moment of the 26th of the 50 events, the middle of the period.
CHANGE_AT = EVENTS_EACH // 2
PRICE_1, PRICE_2 = Decimal("0.000010"), Decimal("0.000004")
COUPON, PERCENT_OFF = "lifecycle bench", Decimal("12.5")
DISCOUNT_LINE = f"Discount: {COUPON} ({PERCENT_OFF}% off)"
UNITS = [Decimal(units) for units in range(1, 1001)]
USDC = Decimal("0.000001")
POLL_SECONDS, GIVE_UP_SECONDS = 0.5, 300.0
# The blocks closed but not timed: before the groups' and after them.
UNTIMED = ("lead", "end")

_SUBSCRIPTION_COLUMNS = (*INVOICING_SUBSCRIPTION_COLUMNS, "plan_segments")
_DISCOUNT_COLUMNS = (
    "id",
    "merchant_id",
    "coupon_id",
    "subscription_id",
    "user_id",
    "periods_left",
    "create_time",
    "end_time",
)
_INVOICED = """
    SELECT count(*) FROM invoicing.invoices
    WHERE merchant_id = $1 AND service_id = $2 AND period_start IS NOT NULL
"""
_UNDELIVERED = "SELECT count(*) FROM invoicing.outbox WHERE delivered_time IS NULL"
# Each period invoice of the service with its lines' amounts in order, and the descriptions of
# its negative lines (the discount's).
_INVOICES = """
    SELECT i.subscription_id, i.plan_id, i.amount, i.create_time,
        array_agg(l.amount ORDER BY l.line_number) AS lines,
        coalesce(array_agg(l.description ORDER BY l.line_number) FILTER (WHERE l.amount < 0),
            '{}') AS off
    FROM invoicing.invoices i
    LEFT JOIN invoicing.invoice_lines l ON l.invoice_id = i.id
    WHERE i.merchant_id = $1 AND i.service_id = $2 AND i.period_start IS NOT NULL
    GROUP BY i.id
"""
# Per subscription, its raw events' quantities before and at or after its change (NULL: none).
_EVENT_SUMS = """
    SELECT s.id, count(e.*) AS events,
        coalesce(sum(e.quantity) FILTER (WHERE s.change IS NULL OR e.occurred_at < s.change), 0),
        coalesce(sum(e.quantity) FILTER (WHERE e.occurred_at >= s.change), 0)
    FROM unnest($2::text[], $3::timestamptz[]) AS s(id, change)
    LEFT JOIN metering.usage_events e ON e.merchant_id = $1 AND e.subscription_id = s.id
    GROUP BY s.id
"""
_RUNNING = """
    SELECT count(*) FROM invoicing.discounts
    WHERE coupon_id = $1 AND end_time IS NULL AND periods_left IS NULL
"""


def _log(message: str) -> None:
    print(f"  lifecycle: {message}", file=sys.stderr, flush=True)


def _usdc(amount: Decimal) -> Decimal:
    """Rounded once to the USDC base unit, half even, as the services round a line."""
    return amount.quantize(USDC, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class _Group:
    """What a group's subscriptions went through in their period."""

    name: str
    label: str
    changed: bool = False  # on plan 2 since the change, on plan 1 before
    discounted: bool = False  # a running discount of the coupon

    def lines(self, before: Decimal, after: Decimal) -> list[Decimal]:
        """The invoice lines of usage `before` and at or after the change."""
        lines = [_usdc(before * PRICE_1)] + ([_usdc(after * PRICE_2)] if self.changed else [])
        if self.discounted:
            lines.append(-_usdc(sum(lines, Decimal(0)) * PERCENT_OFF / 100))
        return lines


PLAIN = _Group("A", "plain")
CHANGED = _Group("B", "changed mid-period (two parts each)", changed=True)
DISCOUNTED = _Group("C", f"with a running {PERCENT_OFF}% discount", discounted=True)
GROUPS = (PLAIN, CHANGED, DISCOUNTED)


@dataclass(frozen=True)
class _Catalog:
    """What invoicing's API created: the service, its two plans and the coupon."""

    service: str
    plan_1: str
    plan_2: str
    coupon: str

    def plan(self, group: _Group) -> str:
        return self.plan_2 if group.changed else self.plan_1


@dataclass(frozen=True)
class _Block:
    """Subscriptions of one group whose periods end at the same moment: [start, end)."""

    name: str
    group: _Group
    first: int  # global index of its first subscription (which picks the quantities)
    size: int
    start: datetime

    @property
    def end(self) -> datetime:
        return period_bounds(self.start, BillingInterval.MONTH, 1, 0)[1]

    @property
    def change(self) -> datetime | None:
        """The moment of event CHANGE_AT, as spread_events places it (the parts meet there)."""
        if not self.group.changed:
            return None
        return self.start + (self.end - self.start) / EVENTS_EACH * CHANGE_AT

    @property
    def timed(self) -> bool:
        return self.name not in UNTIMED

    @property
    def ids(self) -> list[str]:
        return [f"sub_lc_{self.name}_{i:04d}" for i in range(self.size)]

    def quantities(self, offset: int) -> tuple[Decimal, Decimal]:
        """The two quantities the events of its `offset`-th subscription alternate between:
        modulo 997, their sums take every residue modulo 8, so that group C's discounts (12.5% of
        25 x their sum x 10 base units) fall on every case of the rounding, ties either way."""
        index = self.first + offset
        return UNITS[index % 1000], UNITS[7 * index % 997]

    def expected(self, offset: int) -> tuple[Decimal, Decimal]:
        """The loaded quantities before and at or after the change (all before: unchanged)."""
        units = self.quantities(offset)
        split = CHANGE_AT if self.group.changed else EVENTS_EACH
        before = sum((units[j % 2] for j in range(split)), Decimal(0))
        after = sum((units[j % 2] for j in range(split, EVENTS_EACH)), Decimal(0))
        return before, after


def _blocks() -> list[_Block]:
    """The lead-in, A, B, C, C, B, A and the closing batch, their periods ending a second apart
    in turn."""
    base = datetime.now(UTC) - timedelta(days=32)
    layout = [("lead", PLAIN, BLOCK)]
    layout += [(f"{g.name.lower()}1", g, BLOCK) for g in GROUPS]
    layout += [(f"{g.name.lower()}2", g, BLOCK) for g in reversed(GROUPS)]
    layout += [("end", PLAIN, CLOSE_BATCH)]
    blocks, first = [], 0
    for k, (name, group, size) in enumerate(layout):
        blocks.append(_Block(name, group, first, size, base + timedelta(seconds=k)))
        first += size
    ends = [b.end for b in blocks]
    assert ends == sorted(set(ends)), "the blocks' periods must end in turn"
    assert BLOCK % CLOSE_BATCH == 0, "a block must be whole close transactions"
    assert all(sum(b.size for b in blocks if b.timed and b.group is g) == GROUP for g in GROUPS)
    return blocks


async def _catalog(stack: Stack) -> _Catalog:
    """The service, its two plans and the coupon, through invoicing's API."""
    service, plan_1 = await usage_based_plan(stack, "lifecycle bench", PRICE_1)
    async with open_channel(stack.invoicing, stack.credentials) as channel:
        stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        plan_2 = await stub.CreatePlan(
            pb.CreatePlanRequest(
                plan=pb.Plan(
                    service_id=service,
                    name="per unit, changed to",
                    pricing_type=pb.PRICING_TYPE_USAGE_BASED,
                    billing_interval=pb.BILLING_INTERVAL_MONTH,
                    interval_count=1,
                    amount=str(PRICE_2),
                )
            ),
            metadata=METADATA,
        )
        coupon = await stub.CreateCoupon(
            pb.CreateCouponRequest(
                coupon=pb.Coupon(
                    name=COUPON,
                    percent_off=str(PERCENT_OFF),
                    duration=pb.COUPON_DURATION_FOREVER,
                )
            ),
            metadata=METADATA,
        )
    return _Catalog(service, plan_1, plan_2.id, coupon.id)


async def _load_usage(
    connection: asyncpg.Connection, service: str, blocks: Sequence[_Block]
) -> None:
    """Metering's replicas, events and rollups of every block, committed and analyzed."""
    async with connection.transaction():
        for block in blocks:
            ids = block.ids
            await copy_metering_replicas(connection, MERCHANT, service, ids, block.start, block.end)
            events = itertools.chain.from_iterable(
                spread_events(
                    MERCHANT,
                    service,
                    sid,
                    subscriber_of(sid),
                    EVENTS_EACH,
                    block.start,
                    block.end,
                    block.quantities(offset),
                )
                for offset, sid in enumerate(ids)
            )
            await copy_events(connection, events)
            await build_rollups(connection, MERCHANT, ids)
    await vacuum_analyze(connection)


async def _commit_subscriptions(
    connection: asyncpg.Connection, catalog: _Catalog, blocks: Sequence[_Block]
) -> None:
    """Every block's invoicing subscriptions and discounts in one transaction (all due at once):
    the changed ones on plan 2 with their part on plan 1 up to the change (`_segments_to_json`'s
    form), the discounted ones each with a running discount made at its period's start."""
    subscriptions, discounted = [], []
    for block in blocks:
        segment = {"plan_id": catalog.plan_1, "fee_plan_id": catalog.plan_1, "end": block.change}
        segments = json.dumps([segment] if block.change else [], default=datetime.isoformat)
        period = ("ACTIVE", block.start, 0, block.start, block.end, False, 1, block.start)
        plan = catalog.plan(block.group)
        for sid in block.ids:
            subscriptions.append(
                (sid, MERCHANT, catalog.service, plan, subscriber_of(sid), *period, segments)
            )
            if block.group.discounted:
                discounted.append((sid, block.start))
    discounts = [
        (did, MERCHANT, catalog.coupon, sid, subscriber_of(sid), None, made, None)
        for did, (sid, made) in zip(new_ids("di", len(discounted)), discounted, strict=True)
    ]
    async with connection.transaction():
        for table, columns, records in (
            ("subscriptions", _SUBSCRIPTION_COLUMNS, subscriptions),
            ("discounts", _DISCOUNT_COLUMNS, discounts),
        ):
            await connection.copy_records_to_table(
                table, schema_name="invoicing", columns=columns, records=records
            )
            await connection.execute(f"ANALYZE invoicing.{table}")
        await connection.execute(
            "UPDATE invoicing.coupons SET times_redeemed = $2 WHERE id = $1",
            catalog.coupon,
            len(discounts),
        )


async def _wait_for(
    connection: asyncpg.Connection, query: str, args: Sequence[object], done: int | None
) -> tuple[float, int]:
    """Seconds until `query` counts `done` or more (None: nothing), and its count then; raises
    after GIVE_UP_SECONDS when waiting for `done`, else answers what is left. Not the
    measurement: the blocks' times come from the invoices' create_time."""
    began = time.perf_counter()
    while True:
        count = int(await connection.fetchval(query, *args))
        elapsed = time.perf_counter() - began
        if (count == 0) if done is None else (count >= done):
            return elapsed, count
        if elapsed > GIVE_UP_SECONDS:
            if done is None:
                return elapsed, count
            raise TimeoutError(f"{count:,} of {done:,} in {elapsed:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


def _block_seconds(rows: Sequence[asyncpg.Record], blocks: Sequence[_Block]) -> list[float]:
    """Each measured block's seconds, from its first transaction's clock to the next block's
    first; raises unless every transaction closed periods of one block only, in block order."""
    block_of = {sid: block.name for block in blocks for sid in block.ids}
    transactions: dict[datetime, set[str]] = {}
    for row in rows:
        transactions.setdefault(row["create_time"], set()).add(block_of[row["subscription_id"]])
    if any(len(names) != 1 for names in transactions.values()):
        raise AssertionError(f"a close transaction mixed blocks: {transactions}")
    named = [(moment, next(iter(names))) for moment, names in sorted(transactions.items())]
    worked = [name for name, _ in itertools.groupby(name for _, name in named)]
    if worked != [block.name for block in blocks]:
        raise AssertionError(f"blocks closed in the order {worked}, not by period end")
    _log(
        "close transactions: "
        + "; ".join(
            f"{name} {(later - moment).total_seconds():.2f} s"
            for (moment, name), (later, _) in itertools.pairwise(named)
        )
    )
    starts: dict[str, datetime] = {}
    for moment, name in named:
        starts.setdefault(name, moment)
    marks = [starts[block.name] for block in blocks]
    return [(later - moment).total_seconds() for moment, later in itertools.pairwise(marks)]


async def _check(
    connection: asyncpg.Connection,
    rows: Sequence[asyncpg.Record],
    catalog: _Catalog,
    blocks: Sequence[_Block],
) -> Decimal:
    """Every invoice exactly as its raw events price (each line rounded once, half even), the
    raw events as loaded, and the discounts still running; answers the total billed."""
    ids = [sid for block in blocks for sid in block.ids]
    changes = [block.change for block in blocks for _ in block.ids]
    sums = {
        r[0]: (r[1], r[2], r[3])
        for r in await connection.fetch(_EVENT_SUMS, MERCHANT, ids, changes)
    }
    found = {
        r["subscription_id"]: (r["plan_id"], r["amount"], list(r["lines"]), list(r["off"]))
        for r in rows
    }
    wrong: list[tuple[str, object, object]] = []
    for block in blocks:
        group = block.group
        for offset, sid in enumerate(block.ids):
            events, before, after = sums[sid]
            if (events, (before, after)) != (EVENTS_EACH, block.expected(offset)):
                wrong.append((sid, (events, before, after), ("loaded", block.expected(offset))))
                continue
            lines = group.lines(before, after)
            off = [DISCOUNT_LINE] if group.discounted else []
            want = (catalog.plan(group), sum(lines, Decimal(0)), lines, off)
            if found.get(sid) != want:
                wrong.append((sid, found.get(sid), want))
    if wrong or len(found) != len(ids):
        raise AssertionError(
            f"{len(wrong):,} invoices differ from their events, of {len(found):,}"
            f" (expected {len(ids):,}); first (found, expected): {wrong[:3]}"
        )
    running = await connection.fetchval(_RUNNING, catalog.coupon)
    if running != GROUP:
        raise AssertionError(f"{running:,} discounts running after the close, not {GROUP:,}")
    return sum((amount for _, amount, _, _ in found.values()), Decimal(0))


def _figures(seconds: dict[_Group, float]) -> list[Figure]:
    """Each group's time and periods a second next to the plain group's."""
    plain = seconds[PLAIN]
    figures = []
    for group in GROUPS[1:]:
        figures += [
            Figure(
                f"period close, {GROUP:,} subscriptions {group.label}",
                seconds[group],
                "s",
                baseline=f"{GROUP:,} plain (same pass)",
                baseline_value=plain,
            ),
            Figure(
                f"periods {group.label} closed per second",
                GROUP / seconds[group],
                "periods/s",
                baseline="plain periods closed per second",
                baseline_value=GROUP / plain,
            ),
        ]
    return figures


async def measure(stack: Stack) -> list[Figure]:
    catalog = await _catalog(stack)
    blocks = _blocks()
    total = sum(block.size for block in blocks)
    await ensure_partitions(stack.database_url, blocks[0].start, blocks[-1].end)
    connection = await asyncpg.connect(stack.dsn)
    try:
        began = time.perf_counter()
        await _load_usage(connection, catalog.service, blocks)
        _log(
            f"usage of {total:,} subscriptions ({total * EVENTS_EACH:,} events) loaded in"
            f" {time.perf_counter() - began:.1f} s"
        )
        await _commit_subscriptions(connection, catalog, blocks)
        committed = datetime.now(UTC)
        _log(f"the periods ended {committed - blocks[-1].end} ago")
        waited, _ = await _wait_for(connection, _INVOICED, (MERCHANT, catalog.service), total)
        rows = await connection.fetch(_INVOICES, MERCHANT, catalog.service)
        first = min(row["create_time"] for row in rows)
        _log(
            f"close started {(first - committed).total_seconds():.2f} s after the commit;"
            f" all {total:,} invoices seen {waited:.1f} s after it"
        )
        parts: dict[_Group, list[float]] = {group: [] for group in GROUPS}
        for block, block_seconds in zip(blocks[:-1], _block_seconds(rows, blocks), strict=True):
            if block.timed:
                parts[block.group].append(block_seconds)
        seconds = {group: sum(times) for group, times in parts.items()}
        _log(
            ", ".join(
                f"{group.name} ({group.label}) {seconds[group]:.2f} s"
                f" ({' + '.join(f'{s:.2f}' for s in parts[group])})"
                for group in GROUPS
            )
            + "; "
            + ", ".join(
                f"{group.name}/A {seconds[group] / seconds[PLAIN]:.2f}" for group in GROUPS[1:]
            )
        )
        billed = await _check(connection, rows, catalog, blocks)
        _log(f"checked: every invoice exact against its raw events ({billed} USDC billed)")
        drain, left = await _wait_for(connection, _UNDELIVERED, (), None)
        _log(f"outbox empty {drain:.1f} s after the check ({left:,} left)")
    finally:
        await connection.close()
    return _figures(seconds)

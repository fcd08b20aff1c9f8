"""Loading usage events straight into metering's tables, for the figures that need millions.

Recording 10,000,000 events through the API would take most of the benchmark's time on 2 cores,
so summaries.py and period_close.py write them directly, as the ingesting transaction would
have: binary COPY into `metering.usage_events` (its monthly partitions created by metering's own
PartitionKeeper), then the hour and minute rollups in an INSERT ... SELECT each, computing what
`_INSERT_EVENTS` of metering_svc/adapters/event_store.py maintains per (subscription, event key,
hour or minute), then VACUUM ANALYZE and a CHECKPOINT, so that the planner knows the new rows
and neither autovacuum nor the checkpointer works off the load during the measurement. Rows are
generated lazily: memory stays flat whatever the count. Subscriptions due for a period close
are written the same way, into metering's replica and invoicing's table (the period-close figure
and the fault test of a killed close share them: checking out thousands through the API and
waiting a month is not an option), and so are subscriptions in the middle of their period with
events so far (`load_current_period`: the balance and alert figures). The plan they are billed
by is created through invoicing's API (`usage_based_plan`).
"""

import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from bench.stack import MERCHANT, Stack
from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from invoicing_svc.domain.model import BillingInterval
from invoicing_svc.domain.periods import period_bounds
from metering_svc.adapters.partitions import PartitionKeeper, month_of, next_month
from service_kit.channels import open_channel
from service_kit.tenancy import MERCHANT_METADATA_KEY

EVENT_KEY = "token_generated"
# Every column but seq, which takes its default from the sequence, as in ingestion.
COLUMNS = (
    "subscription_id",
    "id",
    "occurred_at",
    "merchant_id",
    "service_id",
    "user_id",
    "event_key",
    "quantity",
    "invoice_id",
    "idempotency_key",
    "properties",
    "receive_time",
)
EventRow = tuple[str, str, datetime, str, str, str, str, Decimal, None, None, str, datetime]

# What ingestion keeps, computed once after the COPY: the hour and the minute rollups.
_ROLLUPS = [
    f"""
    INSERT INTO metering.{table} (
        subscription_id, event_key, bucket_start, merchant_id, total, event_count,
        max_quantity, last_quantity, last_occurred_at, last_seq)
    SELECT subscription_id, event_key, date_trunc('{unit}', occurred_at, 'UTC'), $2,
        sum(quantity), count(*), max(quantity),
        (array_agg(quantity ORDER BY occurred_at DESC, seq DESC))[1],
        max(occurred_at),
        (array_agg(seq ORDER BY occurred_at DESC, seq DESC))[1]
    FROM metering.usage_events
    WHERE subscription_id = ANY($1::text[])
    GROUP BY subscription_id, event_key, date_trunc('{unit}', occurred_at, 'UTC')
"""
    for table, unit in (("usage_rollups", "hour"), ("usage_minute_rollups", "minute"))
]


_METERING_REPLICA = (
    "id",
    "merchant_id",
    "service_id",
    "user_id",
    "status",
    "current_period_start",
    "current_period_end",
    "version",
    "update_time",
)
INVOICING_SUBSCRIPTION_COLUMNS = (
    "id",
    "merchant_id",
    "service_id",
    "plan_id",
    "user_id",
    "status",
    "billing_anchor",
    "period_index",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "version",
    "create_time",
)


async def usage_based_plan(stack: Stack, name: str, unit_price: Decimal) -> tuple[str, str]:
    """A service of mer_bench and its USAGE_BASED plan (`unit_price` a unit of any event key,
    monthly), through invoicing's API: what the loaded subscriptions are billed by."""
    metadata = ((MERCHANT_METADATA_KEY, MERCHANT),)
    async with open_channel(stack.invoicing, stack.credentials) as channel:
        stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        service = await stub.CreateService(
            pb.CreateServiceRequest(service=pb.Service(name=name)), metadata=metadata
        )
        plan = await stub.CreatePlan(
            pb.CreatePlanRequest(
                plan=pb.Plan(
                    service_id=service.id,
                    name="per unit",
                    pricing_type=pb.PRICING_TYPE_USAGE_BASED,
                    billing_interval=pb.BILLING_INTERVAL_MONTH,
                    interval_count=1,
                    amount=str(unit_price),
                )
            ),
            metadata=metadata,
        )
    return service.id, plan.id


def subscriber_of(subscription_id: str) -> str:
    """The user id the loaders give a subscription: "usr_x" for "sub_x"."""
    return subscription_id.replace("sub_", "usr_")


async def copy_metering_replicas(
    connection: asyncpg.Connection,
    merchant_id: str,
    service_id: str,
    ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> None:
    """Metering's replica of each subscription: ACTIVE in its period [start, end), version 1."""
    now = datetime.now(UTC)
    await connection.copy_records_to_table(
        "subscriptions",
        schema_name="metering",
        columns=_METERING_REPLICA,
        records=[
            (sid, merchant_id, service_id, subscriber_of(sid), "ACTIVE", start, end, 1, now)
            for sid in ids
        ],
    )


async def copy_invoicing_subscriptions(
    connection: asyncpg.Connection,
    merchant_id: str,
    service_id: str,
    plan_id: str,
    ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> None:
    """Invoicing's subscriptions in period 0 [start, end), anchored and created at `start`;
    due for their close once `end` (and the grace window) passed. Write the metering replicas
    first, so the scheduler never sees a subscription metering lacks."""
    first_period = ("ACTIVE", start, 0, start, end, False, 1, start)
    await connection.copy_records_to_table(
        "subscriptions",
        schema_name="invoicing",
        columns=INVOICING_SUBSCRIPTION_COLUMNS,
        records=[
            (sid, merchant_id, service_id, plan_id, subscriber_of(sid), *first_period)
            for sid in ids
        ],
    )


def spread_events(
    merchant_id: str,
    service_id: str,
    subscription_id: str,
    user_id: str,
    count: int,
    start: datetime,
    end: datetime,
    quantities: Sequence[Decimal],
) -> Iterator[EventRow]:
    """`count` events evenly spread over [start, end), in time order, quantities in turn."""
    step = (end - start) / count
    prefix = f"evt_{subscription_id}_"
    for i in range(count):
        moment = start + step * i
        yield (
            subscription_id,
            f"{prefix}{i:09d}",
            moment,
            merchant_id,
            service_id,
            user_id,
            EVENT_KEY,
            quantities[i % len(quantities)],
            None,
            None,
            "{}",
            moment,
        )


async def ensure_partitions(database_url: str, start: datetime, end: datetime) -> None:
    """The monthly partitions of usage_events covering [start, end), as metering creates them."""
    months = [month_of(start)]
    while next_month(months[-1]) <= month_of(end):
        months.append(next_month(months[-1]))
    engine = create_async_engine(database_url)
    try:
        await PartitionKeeper(engine).ensure(months)
    finally:
        await engine.dispose()


async def copy_events(connection: asyncpg.Connection, rows: Iterator[EventRow]) -> None:
    await connection.copy_records_to_table(
        "usage_events", schema_name="metering", columns=COLUMNS, records=rows
    )


async def build_rollups(
    connection: asyncpg.Connection, merchant_id: str, subscription_ids: Sequence[str]
) -> None:
    """The hour and minute rollups of the subscriptions' events (which must have none yet)."""
    for rollups in _ROLLUPS:
        await connection.execute(rollups, list(subscription_ids), merchant_id)


async def vacuum_analyze(connection: asyncpg.Connection) -> None:
    """Statistics and visibility maps for the new rows, and their pages written out, so that
    neither autovacuum nor a checkpoint catching up with the load runs during the measurement."""
    await connection.execute(
        "VACUUM (ANALYZE) metering.usage_events, metering.usage_rollups,"
        " metering.usage_minute_rollups"
    )
    await connection.execute("CHECKPOINT")


async def load_current_period(
    stack: Stack,
    service_id: str,
    plan_id: str,
    ids: Sequence[str],
    events_each: int,
    quantities: Callable[[int], Sequence[Decimal]],
) -> tuple[datetime, datetime]:
    """Subscriptions of mer_bench's plan in their current period, monthly and anchored 10 days
    ago (so it ends in about 20 days and the scheduler leaves them alone), each with
    `events_each` events of EVENT_KEY spread from the period start to now, the i-th
    subscription's quantities `quantities(i)` in turn: metering's replicas, events and rollups
    in one transaction, VACUUM ANALYZE, then invoicing's subscriptions, analyzed. Answers the
    period's start and end."""
    start = datetime.now(UTC) - timedelta(days=10)
    end = period_bounds(start, BillingInterval.MONTH, 1, 0)[1]
    await ensure_partitions(stack.database_url, start, end)
    now = datetime.now(UTC)
    connection = await asyncpg.connect(stack.dsn)
    try:
        async with connection.transaction():
            await copy_metering_replicas(connection, MERCHANT, service_id, ids, start, end)
            events = itertools.chain.from_iterable(
                spread_events(
                    MERCHANT,
                    service_id,
                    sid,
                    subscriber_of(sid),
                    events_each,
                    start,
                    now,
                    quantities(i),
                )
                for i, sid in enumerate(ids)
            )
            await copy_events(connection, events)
            await build_rollups(connection, MERCHANT, ids)
        await vacuum_analyze(connection)
        async with connection.transaction():
            await copy_invoicing_subscriptions(
                connection, MERCHANT, service_id, plan_id, ids, start, end
            )
            await connection.execute("ANALYZE invoicing.subscriptions")
    finally:
        await connection.close()
    return start, end

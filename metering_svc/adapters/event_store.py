"""Usage events: bulk insert with deduplication and rollup upkeep, listing and cancellation.

Bulk statements pass columns as arrays through `unnest`, so a batch of thousands of events is a
handful of statements. Rollups are updated once per (subscription, event key, hour) per batch.
"""

import json
import weakref
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from metering_svc.domain.model import StoredUsageEvent, UsageEvent
from service_kit.errors import Unavailable

_EXISTING_KEYS = text("""
    SELECT k.subscription_id, k.idempotency_key, k.event_id
    FROM metering.usage_event_keys k
    JOIN unnest(CAST(:subscription_ids AS text[]), CAST(:keys AS text[]))
        AS t(subscription_id, idempotency_key) USING (subscription_id, idempotency_key)
""")

# Events reach their table through a per-connection staging table filled by binary COPY, far
# cheaper to encode than one array per column.
_STAGING = """
    CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
        subscription_id text, id text, occurred_at timestamptz, service_id text, user_id text,
        event_key text, quantity numeric, invoice_id text, idempotency_key text, properties jsonb
    ) ON COMMIT DELETE ROWS
"""
_STAGED_COLUMNS = [
    "subscription_id",
    "id",
    "occurred_at",
    "service_id",
    "user_id",
    "event_key",
    "quantity",
    "invoice_id",
    "idempotency_key",
    "properties",
]
_staging_ready: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _roll_up(name: str, table: str, source: str) -> str:
    """A CTE adding `source`'s aggregates (rows of the rollup's own shape) to a rollup table."""
    return f"""
    {name} AS (
        INSERT INTO metering.{table} AS r (
            subscription_id, event_key, bucket_start, merchant_id, total, event_count,
            max_quantity, last_quantity, last_occurred_at, last_seq)
        {source}
        ORDER BY 1, 2, 3
        ON CONFLICT (subscription_id, event_key, bucket_start) DO UPDATE SET
            total = r.total + excluded.total,
            event_count = r.event_count + excluded.event_count,
            max_quantity = greatest(r.max_quantity, excluded.max_quantity),
            last_quantity = CASE WHEN r.last_occurred_at IS NULL
                OR (excluded.last_occurred_at, excluded.last_seq) > (r.last_occurred_at, r.last_seq)
                THEN excluded.last_quantity ELSE r.last_quantity END,
            last_seq = CASE WHEN r.last_occurred_at IS NULL
                OR (excluded.last_occurred_at, excluded.last_seq) > (r.last_occurred_at, r.last_seq)
                THEN excluded.last_seq ELSE r.last_seq END,
            last_occurred_at = greatest(r.last_occurred_at, excluded.last_occurred_at)
        RETURNING 1
    )"""


# One statement claims the staged events' idempotency keys, stores the events that won their
# claim (and those without a key), and folds them into the rollups. The events are aggregated
# once, per minute; the hours add up their minutes. The final SELECT reads the CTEs in the order
# they lock: keys, events, hour rows, then the minute rows within them (as cancellation does).
_STORE_EVENTS = text(f"""
    WITH claimed AS (
        INSERT INTO metering.usage_event_keys
            (subscription_id, idempotency_key, merchant_id, event_id)
        SELECT t.subscription_id, t.idempotency_key, :merchant_id, t.id
        FROM pg_temp.ingest_staging t
        WHERE t.idempotency_key IS NOT NULL
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING
        RETURNING event_id
    ),
    stored AS (
        INSERT INTO metering.usage_events (
            subscription_id, id, occurred_at, merchant_id, service_id, user_id, event_key,
            quantity, invoice_id, idempotency_key, properties, receive_time)
        SELECT t.subscription_id, t.id, t.occurred_at, :merchant_id, t.service_id, t.user_id,
            t.event_key, t.quantity, t.invoice_id, t.idempotency_key, t.properties, :receive_time
        FROM pg_temp.ingest_staging t
        WHERE t.idempotency_key IS NULL OR t.id IN (SELECT event_id FROM claimed)
        RETURNING subscription_id, service_id, event_key, occurred_at, quantity, seq, properties
    ),
    minutes AS (
        SELECT subscription_id, event_key, date_trunc('minute', occurred_at, 'UTC') AS minute,
            sum(quantity) AS total, count(*) AS event_count, max(quantity) AS max_quantity,
            (array_agg(quantity ORDER BY occurred_at DESC, seq DESC))[1] AS last_quantity,
            max(occurred_at) AS last_occurred_at,
            (array_agg(seq ORDER BY occurred_at DESC, seq DESC))[1] AS last_seq
        FROM stored
        GROUP BY 1, 2, 3
    ),
{
    _roll_up(
        "rolled",
        "usage_rollups",
        '''SELECT subscription_id, event_key, date_trunc('hour', minute, 'UTC'), :merchant_id,
            sum(total), sum(event_count), max(max_quantity),
            (array_agg(last_quantity ORDER BY last_occurred_at DESC, last_seq DESC))[1],
            max(last_occurred_at),
            (array_agg(last_seq ORDER BY last_occurred_at DESC, last_seq DESC))[1]
        FROM minutes
        GROUP BY 1, 2, 3''',
    )
},
{
    _roll_up(
        "rolled_minutes",
        "usage_minute_rollups",
        '''SELECT subscription_id, event_key, minute, :merchant_id, total, event_count,
            max_quantity, last_quantity, last_occurred_at, last_seq
        FROM minutes''',
    )
},
    uniques AS (
        INSERT INTO metering.usage_unique_values AS u (
            subscription_id, event_key, property, bucket_start, value, merchant_id, event_count)
        SELECT s.subscription_id, s.event_key, m.unique_property,
            date_trunc('hour', s.occurred_at, 'UTC'), s.properties ->> m.unique_property,
            :merchant_id, count(*)
        FROM stored s
        JOIN metering.meters m ON m.merchant_id = :merchant_id AND m.service_id = s.service_id
            AND m.event_key = s.event_key AND m.aggregation = 'UNIQUE_COUNT'
        WHERE s.properties ? m.unique_property
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (subscription_id, event_key, property, bucket_start, value)
            DO UPDATE SET event_count = u.event_count + excluded.event_count
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM rolled) AS buckets,
        (SELECT count(*) FROM rolled_minutes) AS minutes,
        (SELECT count(*) FROM uniques) AS uniques,
        ARRAY(
            SELECT t.id FROM pg_temp.ingest_staging t WHERE t.idempotency_key IS NOT NULL
            EXCEPT SELECT event_id FROM claimed
        ) AS unclaimed
""")

_EVENT_COLUMNS = """
    e.subscription_id, e.id, e.occurred_at, e.merchant_id, e.service_id, e.user_id, e.event_key,
    e.quantity, e.invoice_id, e.idempotency_key, e.properties, e.receive_time, e.seq,
    c.cancel_time, c.reason AS cancel_reason
"""

_FIND_EVENT = text(f"""
    SELECT {_EVENT_COLUMNS}
    FROM metering.usage_events e
    LEFT JOIN metering.usage_event_cancellations c
        ON c.subscription_id = e.subscription_id AND c.event_id = e.id
    WHERE e.id = :id AND e.merchant_id = :merchant_id
""")

_EVENT_OF_KEY = text("""
    SELECT event_id FROM metering.usage_event_keys
    WHERE subscription_id = :subscription_id AND idempotency_key = :key
        AND merchant_id = :merchant_id
""")

_LIST_EVENTS = text(f"""
    SELECT {_EVENT_COLUMNS}
    FROM metering.usage_events e
    LEFT JOIN metering.usage_event_cancellations c
        ON c.subscription_id = e.subscription_id AND c.event_id = e.id
    WHERE e.subscription_id = :subscription_id AND e.merchant_id = :merchant_id
        AND (CAST(:event_key AS text) IS NULL OR e.event_key = :event_key)
        AND e.occurred_at >= :start_time AND e.occurred_at < :end_time
        AND (e.occurred_at, e.seq) > (:after_time, :after_seq)
    ORDER BY e.occurred_at, e.seq
    LIMIT :limit
""")

_CANCEL = text("""
    INSERT INTO metering.usage_event_cancellations
        (subscription_id, event_id, merchant_id, reason, cancel_time)
    VALUES (:subscription_id, :event_id, :merchant_id, :reason, :cancel_time)
    ON CONFLICT DO NOTHING
    RETURNING event_id
""")

# A canceled event leaves its hour and minute buckets: each is recomputed from the raw events it
# still counts. The rollup rows are locked first (the hour's, then the minute's, as ingestion
# does), so concurrent ingestion into the buckets waits for us.
_GRANULARITIES = (("usage_rollups", "hour"), ("usage_minute_rollups", "minute"))


def _lock_bucket(table: str, unit: str) -> TextClause:
    return text(f"""
        SELECT 1 FROM metering.{table}
        WHERE subscription_id = :subscription_id AND event_key = :event_key
            AND bucket_start = date_trunc('{unit}', CAST(:occurred_at AS timestamptz), 'UTC')
        FOR UPDATE
    """)


def _recompute_bucket(table: str, unit: str) -> TextClause:
    bucket = f"date_trunc('{unit}', CAST(:occurred_at AS timestamptz), 'UTC')"
    return text(f"""
        UPDATE metering.{table} r SET
            total = agg.total, event_count = agg.event_count, max_quantity = agg.max_quantity,
            last_quantity = agg.last_quantity, last_occurred_at = agg.last_occurred_at,
            last_seq = agg.last_seq
        FROM (
            SELECT coalesce(sum(e.quantity), 0) AS total, count(*) AS event_count,
                max(e.quantity) AS max_quantity,
                (array_agg(e.quantity ORDER BY e.occurred_at DESC, e.seq DESC))[1]
                    AS last_quantity,
                max(e.occurred_at) AS last_occurred_at,
                (array_agg(e.seq ORDER BY e.occurred_at DESC, e.seq DESC))[1] AS last_seq
            FROM metering.usage_events e
            WHERE e.subscription_id = :subscription_id AND e.event_key = :event_key
                AND e.occurred_at >= {bucket} AND e.occurred_at < {bucket} + interval '1 {unit}'
                AND NOT EXISTS (
                    SELECT 1 FROM metering.usage_event_cancellations c
                    WHERE c.subscription_id = e.subscription_id AND c.event_id = e.id)
        ) agg
        WHERE r.subscription_id = :subscription_id AND r.event_key = :event_key
            AND r.bucket_start = {bucket}
    """)


_LOCK_BUCKETS = [_lock_bucket(table, unit) for table, unit in _GRANULARITIES]
_RECOMPUTE_BUCKETS = [_recompute_bucket(table, unit) for table, unit in _GRANULARITIES]

_UNCOUNT_UNIQUE_VALUES = text("""
    UPDATE metering.usage_unique_values u SET event_count = u.event_count - 1
    FROM jsonb_each_text(CAST(:properties AS jsonb)) AS p(property, value)
    WHERE u.subscription_id = :subscription_id AND u.event_key = :event_key
        AND u.bucket_start = date_trunc('hour', CAST(:occurred_at AS timestamptz), 'UTC')
        AND u.property = p.property AND u.value = p.value
""")

_EPOCH = datetime.fromisoformat("0001-01-01T00:00:00+00:00")
_END_OF_TIME = datetime.fromisoformat("9999-12-31T00:00:00+00:00")


def _stored_event(row: Any) -> StoredUsageEvent:
    return StoredUsageEvent(
        event=UsageEvent(
            id=row.id,
            merchant_id=row.merchant_id,
            service_id=row.service_id,
            subscription_id=row.subscription_id,
            user_id=row.user_id,
            event_key=row.event_key,
            quantity=row.quantity,
            occurred_at=row.occurred_at,
            invoice_id=row.invoice_id or "",
            idempotency_key=row.idempotency_key or "",
            properties=row.properties,
        ),
        receive_time=row.receive_time,
        cancel_time=row.cancel_time,
        cancel_reason=row.cancel_reason or "",
        position=(row.occurred_at, row.seq),
    )


class EventStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def store_new(
        self, merchant_id: str, events: Sequence[UsageEvent], receive_time: datetime
    ) -> dict[tuple[str, str], str]:
        """Stores the events whose (subscription, idempotency key) no earlier event holds, and
        those without a key, and folds them into the hour and minute rollups, in the caller's
        transaction. Returns, for each key recorded before, the id of the event first recorded
        with it. A claim by a concurrent transaction is waited for."""
        if not events:
            return {}
        connection = await self._session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        if driver not in _staging_ready:
            await driver.execute(_STAGING)
            _staging_ready.add(driver)
        await driver.copy_records_to_table(
            "ingest_staging",
            columns=_STAGED_COLUMNS,
            records=[
                (
                    e.subscription_id,
                    e.id,
                    e.occurred_at,
                    e.service_id,
                    e.user_id,
                    e.event_key,
                    e.quantity,
                    e.invoice_id or None,
                    e.idempotency_key or None,
                    json.dumps(e.properties) if e.properties else "{}",
                )
                for e in events
            ],
        )
        outcome = await self._session.execute(
            _STORE_EVENTS, {"merchant_id": merchant_id, "receive_time": receive_time}
        )
        unclaimed = set(outcome.one().unclaimed)
        if not unclaimed:
            return {}
        taken = [e for e in events if e.id in unclaimed]
        # A new statement: it sees the claims that concurrent transactions committed meanwhile.
        existing = await self._session.execute(
            _EXISTING_KEYS,
            {
                "subscription_ids": [e.subscription_id for e in taken],
                "keys": [e.idempotency_key for e in taken],
            },
        )
        earlier = {(row.subscription_id, row.idempotency_key): row.event_id for row in existing}
        if len(earlier) < len(taken):
            # Keys are never deleted: a claim that lost and yet finds no key is not answerable.
            raise Unavailable("an idempotency key claim could not be resolved; retry")
        return earlier

    async def recorded_keys(self, keys: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (subscription, idempotency key) pairs an event was recorded with."""
        if not keys:
            return set()
        ordered = sorted(keys)
        rows = await self._session.execute(
            _EXISTING_KEYS,
            {"subscription_ids": [k[0] for k in ordered], "keys": [k[1] for k in ordered]},
        )
        return {(row.subscription_id, row.idempotency_key) for row in rows}

    async def id_of_key(
        self, merchant_id: str, subscription_id: str, idempotency_key: str
    ) -> str | None:
        """The id of the event first recorded with this idempotency key for the subscription."""
        found: str | None = await self._session.scalar(
            _EVENT_OF_KEY,
            {
                "merchant_id": merchant_id,
                "subscription_id": subscription_id,
                "key": idempotency_key,
            },
        )
        return found

    async def find(self, merchant_id: str, event_id: str) -> StoredUsageEvent | None:
        row = (
            await self._session.execute(_FIND_EVENT, {"id": event_id, "merchant_id": merchant_id})
        ).first()
        return _stored_event(row) if row else None

    async def list(
        self,
        merchant_id: str,
        subscription_id: str,
        *,
        event_key: str | None,
        start_time: datetime | None,
        end_time: datetime | None,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> list[StoredUsageEvent]:
        rows = await self._session.execute(
            _LIST_EVENTS,
            {
                "merchant_id": merchant_id,
                "subscription_id": subscription_id,
                "event_key": event_key,
                "start_time": start_time or _EPOCH,
                "end_time": end_time or _END_OF_TIME,
                "after_time": after[0] if after else _EPOCH,
                "after_seq": after[1] if after else 0,
                "limit": limit,
            },
        )
        return [_stored_event(row) for row in rows]

    async def cancel(self, stored: StoredUsageEvent, reason: str, cancel_time: datetime) -> bool:
        """Records the cancellation and takes the event out of its rollups. False if it was
        canceled already."""
        event = stored.event
        bucket = {
            "subscription_id": event.subscription_id,
            "event_key": event.event_key,
            "occurred_at": event.occurred_at,
        }
        for lock in _LOCK_BUCKETS:
            await self._session.execute(lock, bucket)
        inserted = await self._session.execute(
            _CANCEL,
            {
                "subscription_id": event.subscription_id,
                "event_id": event.id,
                "merchant_id": event.merchant_id,
                "reason": reason,
                "cancel_time": cancel_time,
            },
        )
        if inserted.first() is None:
            return False
        for recompute in _RECOMPUTE_BUCKETS:
            await self._session.execute(recompute, bucket)
        await self._session.execute(
            _UNCOUNT_UNIQUE_VALUES, {**bucket, "properties": json.dumps(event.properties)}
        )
        return True

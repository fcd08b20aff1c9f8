"""Migration 0004 fills the minute rollups from the events stored before it, canceled ones left
out, exactly as ingestion would have kept them."""

import asyncio
from decimal import Decimal
from pathlib import Path

import asyncpg

from service_kit import migrations
from tests.conftest import scratch_database

MIGRATIONS = Path(__file__).parents[2] / "metering_svc" / "migrations"
EVENTS = [
    # id, occurred_at, quantity
    ("evt_1", "2026-11-01 10:15:05+00", "1.5"),
    ("evt_2", "2026-11-01 10:15:59+00", "2.25"),
    ("evt_3", "2026-11-01 10:15:30+00", "7"),
    ("evt_4", "2026-11-01 10:16:00+00", "0.000000000001"),
]


async def test_the_migration_fills_minute_rollups_without_canceled_events(
    database_url: str, db: asyncpg.Connection
) -> None:
    async with scratch_database(db, database_url, "minute_rollups_migration") as (url, connection):
        await asyncio.to_thread(migrations.upgrade, MIGRATIONS, url, "0003")
        await connection.execute(
            "CREATE TABLE metering.usage_events_2026_11 PARTITION OF metering.usage_events"
            " FOR VALUES FROM ('2026-11-01 00:00+00') TO ('2026-12-01 00:00+00')"
        )
        for event_id, occurred_at, quantity in EVENTS:
            await connection.execute(
                "INSERT INTO metering.usage_events (subscription_id, id, occurred_at,"
                " merchant_id, service_id, user_id, event_key, quantity, receive_time)"
                " VALUES ('sub_1', $1, $2::text::timestamptz, 'mer_1', 'svc_1', 'usr_1', 'tokens',"
                " $3::text::numeric, now())",
                event_id,
                occurred_at,
                quantity,
            )
        await connection.execute(
            "INSERT INTO metering.usage_event_cancellations VALUES"
            " ('sub_1', 'evt_2', 'mer_1', 'duplicate', now())"
        )
        await asyncio.to_thread(migrations.upgrade, MIGRATIONS, url, "head")
        rows = await connection.fetch(
            "SELECT to_char(bucket_start AT TIME ZONE 'UTC', 'HH24:MI') AS minute, total,"
            " event_count, max_quantity, last_quantity"
            " FROM metering.usage_minute_rollups ORDER BY bucket_start"
        )
    assert [tuple(row) for row in rows] == [
        ("10:15", Decimal("8.5"), 2, Decimal("7"), Decimal("7")),
        ("10:16", Decimal("0.000000000001"), 1, Decimal("1E-12"), Decimal("1E-12")),
    ]

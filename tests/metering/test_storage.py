"""What the database guarantees: append-only events, partitions, keys with subscription_id."""

import asyncpg
import pytest

from tests.metering.conftest import Tenant


async def test_usage_events_refuse_update_and_delete(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    recorded = await tenant.record("1")
    for statement in (
        "UPDATE metering.usage_events SET quantity = 2 WHERE id = $1",
        "DELETE FROM metering.usage_events WHERE id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(statement, recorded.event_id)
    assert (
        await db.fetchval(
            "SELECT quantity FROM metering.usage_events WHERE id = $1", recorded.event_id
        )
        == 1
    )


async def test_every_unique_key_of_usage_tables_includes_subscription_id(
    db: asyncpg.Connection,
) -> None:
    rows = await db.fetch(
        """
        SELECT c.relname AS table_name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'metering' AND i.indisunique AND c.relname LIKE 'usage%'
            AND c.relispartition = false
        """
    )
    assert {row["table_name"] for row in rows} == {
        "usage_events",
        "usage_event_keys",
        "usage_event_cancellations",
        "usage_rollups",
        "usage_minute_rollups",
        "usage_unique_values",
    }
    assert all("(subscription_id" in row["definition"] for row in rows)


async def test_events_are_partitioned_by_month(db: asyncpg.Connection) -> None:
    strategy = await db.fetchval(
        "SELECT partstrat FROM pg_partitioned_table "
        "WHERE partrelid = 'metering.usage_events'::regclass"
    )
    partitions = await db.fetch(
        "SELECT inhrelid::regclass::text AS name FROM pg_inherits "
        "WHERE inhparent = 'metering.usage_events'::regclass ORDER BY 1"
    )
    assert strategy == b"r"  # range partitioning
    # The server created the current month and two ahead at start-up.
    assert {
        "metering.usage_events_2026_11",
        "metering.usage_events_2026_12",
        "metering.usage_events_2027_01",
    } <= {row["name"] for row in partitions}

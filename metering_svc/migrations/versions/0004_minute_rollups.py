"""Minute rollups: a summary reads whole hours from the hourly rollups, the whole minutes of its
two partial edge hours from these, and raw events only for the two partial minutes left, so its
cost stays flat in the number of events. Filled from the events stored before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE metering.usage_minute_rollups (
            subscription_id text NOT NULL,
            event_key text NOT NULL,
            bucket_start timestamptz NOT NULL,
            merchant_id text NOT NULL,
            total numeric NOT NULL,
            event_count bigint NOT NULL,
            max_quantity numeric,
            last_quantity numeric,
            last_occurred_at timestamptz,
            last_seq bigint,
            PRIMARY KEY (subscription_id, event_key, bucket_start)
        )
    """)
    op.execute("""
        INSERT INTO metering.usage_minute_rollups (
            subscription_id, event_key, bucket_start, merchant_id, total, event_count,
            max_quantity, last_quantity, last_occurred_at, last_seq)
        SELECT e.subscription_id, e.event_key, date_trunc('minute', e.occurred_at, 'UTC'),
            min(e.merchant_id), sum(e.quantity), count(*), max(e.quantity),
            (array_agg(e.quantity ORDER BY e.occurred_at DESC, e.seq DESC))[1],
            max(e.occurred_at),
            (array_agg(e.seq ORDER BY e.occurred_at DESC, e.seq DESC))[1]
        FROM metering.usage_events e
        WHERE NOT EXISTS (
            SELECT 1 FROM metering.usage_event_cancellations c
            WHERE c.subscription_id = e.subscription_id AND c.event_id = e.id)
        GROUP BY 1, 2, 3
    """)


def downgrade() -> None:
    op.execute("DROP TABLE metering.usage_minute_rollups")

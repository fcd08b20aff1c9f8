"""The time index of usage events carries what a summary edge aggregates.

A summary reads the partial hours at the edges of its window from raw events: with event key,
quantity and id in the (subscription_id, occurred_at, seq) index, that is an index-only scan,
whatever the order the events' rows were written in.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


TIME_INDEX = (
    "CREATE INDEX usage_events_by_time ON metering.usage_events (subscription_id, occurred_at, seq)"
)


def upgrade() -> None:
    op.execute("DROP INDEX metering.usage_events_by_time")
    op.execute(f"{TIME_INDEX} INCLUDE (event_key, quantity, id)")


def downgrade() -> None:
    op.execute("DROP INDEX metering.usage_events_by_time")
    op.execute(TIME_INDEX)

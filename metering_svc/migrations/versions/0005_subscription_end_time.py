"""Subscriptions may carry the end of their billable time (a cancellation at the period end), so
that ingestion refuses events from then on instead of accepting usage no invoice would bill.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE metering.subscriptions ADD COLUMN end_time timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE metering.subscriptions DROP COLUMN end_time")

"""Subscriptions may carry a test clock time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE metering.subscriptions ADD COLUMN test_clock_time timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE metering.subscriptions DROP COLUMN test_clock_time")

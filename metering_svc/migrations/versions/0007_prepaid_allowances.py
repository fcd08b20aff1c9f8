"""Subscriptions of prepaid-only plans carry their allowance: the subscriber's credits, the
moment from which usage is paid from them, and the plan's charges to price it with (decimal
strings, never floats). NULL for every other plan.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE metering.subscriptions ADD COLUMN prepaid jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE metering.subscriptions DROP COLUMN prepaid")

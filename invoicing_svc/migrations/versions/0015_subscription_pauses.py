"""Pauses: a subscription may be PAUSED (no period runs); when it was paused, and where the
usage of its resumed period starts.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE invoicing.subscriptions
            DROP CONSTRAINT subscriptions_status_check,
            ADD CONSTRAINT subscriptions_status_check
                CHECK (status IN ('ACTIVE', 'PAST_DUE', 'PAUSED', 'CANCELED')),
            ADD COLUMN pause_time timestamptz,
            ADD COLUMN usage_from timestamptz
    """)


def downgrade() -> None:
    op.execute("""
        ALTER TABLE invoicing.subscriptions
            DROP COLUMN pause_time, DROP COLUMN usage_from,
            DROP CONSTRAINT subscriptions_status_check,
            ADD CONSTRAINT subscriptions_status_check
                CHECK (status IN ('ACTIVE', 'PAST_DUE', 'CANCELED'))
    """)

"""A subscription replica may be PAUSED: metering refuses its events until it resumes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE metering.subscriptions
            DROP CONSTRAINT subscriptions_status_check,
            ADD CONSTRAINT subscriptions_status_check
                CHECK (status IN ('ACTIVE', 'PAST_DUE', 'PAUSED', 'CANCELED'))
    """)


def downgrade() -> None:
    op.execute("""
        ALTER TABLE metering.subscriptions
            DROP CONSTRAINT subscriptions_status_check,
            ADD CONSTRAINT subscriptions_status_check
                CHECK (status IN ('ACTIVE', 'PAST_DUE', 'CANCELED'))
    """)

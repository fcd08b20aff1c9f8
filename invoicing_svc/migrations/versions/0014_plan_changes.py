"""Plan changes: the parts of a subscription's current period before a change, the plan its
current part's fee is charged at, the plan a change schedules for the period's end, and the
prorations waiting for the period's invoice.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE invoicing.subscriptions
            ADD COLUMN plan_segments jsonb NOT NULL DEFAULT '[]',
            ADD COLUMN fee_plan_id text NOT NULL DEFAULT '',
            ADD COLUMN scheduled_plan_id text NOT NULL DEFAULT '',
            ADD COLUMN pending_lines jsonb NOT NULL DEFAULT '[]'
    """)


def downgrade() -> None:
    op.execute("""
        ALTER TABLE invoicing.subscriptions
            DROP COLUMN plan_segments, DROP COLUMN fee_plan_id,
            DROP COLUMN scheduled_plan_id, DROP COLUMN pending_lines
    """)

"""Trials: a plan's trial days, whether trial usage is billed and what ends a trial without a
mandate; a subscription's trial end, whether its reminder went out, and its mandate as settlement
reported it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE invoicing.plans
            ADD COLUMN trial_days integer NOT NULL DEFAULT 0,
            ADD COLUMN trial_usage_billed boolean NOT NULL DEFAULT false,
            ADD COLUMN trial_end_action text NOT NULL DEFAULT 'CONVERT'
                CHECK (trial_end_action IN ('CONVERT', 'CANCEL', 'PAUSE'))
    """)
    op.execute("""
        ALTER TABLE invoicing.subscriptions
            ADD COLUMN trial_end timestamptz,
            ADD COLUMN trial_reminded boolean NOT NULL DEFAULT false,
            ADD COLUMN mandate_id text NOT NULL DEFAULT '',
            ADD COLUMN mandate_expire_time timestamptz
    """)
    # The trials whose reminder is still to send.
    op.execute(
        "CREATE INDEX subscriptions_trial_reminders ON invoicing.subscriptions (trial_end)"
        " WHERE trial_end IS NOT NULL AND NOT trial_reminded"
    )


def downgrade() -> None:
    op.execute("DROP INDEX invoicing.subscriptions_trial_reminders")
    op.execute("""
        ALTER TABLE invoicing.subscriptions
            DROP COLUMN trial_end, DROP COLUMN trial_reminded,
            DROP COLUMN mandate_id, DROP COLUMN mandate_expire_time
    """)
    op.execute("""
        ALTER TABLE invoicing.plans
            DROP COLUMN trial_days, DROP COLUMN trial_usage_billed, DROP COLUMN trial_end_action
    """)

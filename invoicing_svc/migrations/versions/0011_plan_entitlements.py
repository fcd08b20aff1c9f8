"""Entitlements: the features a plan includes and its usage limits per event key and billing
period (quantities as decimal strings, never floats), and an index of the subscriptions of a plan
that a change of them reaches.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-23
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE invoicing.plans ADD COLUMN features text[] NOT NULL DEFAULT '{}'")
    op.execute(
        "ALTER TABLE invoicing.plans ADD COLUMN limits jsonb NOT NULL DEFAULT '[]'"
        " CHECK (jsonb_typeof(limits) = 'array')"
    )
    # UpdatePlan of features or limits bumps every subscription of the plan not canceled.
    op.execute(
        "CREATE INDEX subscriptions_of_plan ON invoicing.subscriptions (plan_id)"
        " WHERE status <> 'CANCELED'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX invoicing.subscriptions_of_plan")
    op.execute("ALTER TABLE invoicing.plans DROP COLUMN limits")
    op.execute("ALTER TABLE invoicing.plans DROP COLUMN features")

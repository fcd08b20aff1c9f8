"""Webhook endpoints carry their failure clock and when they were disabled; due deliveries are
found per endpoint, for the fair claim (adapters/webhook_store.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE invoicing.webhook_endpoints"
        " ADD COLUMN failing_since timestamptz, ADD COLUMN disable_time timestamptz"
    )
    op.execute(
        "CREATE INDEX webhook_deliveries_due_per_endpoint"
        " ON invoicing.webhook_deliveries (endpoint_id, next_attempt_time, id)"
        " WHERE status = 'PENDING'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX invoicing.webhook_deliveries_due_per_endpoint")
    op.execute(
        "ALTER TABLE invoicing.webhook_endpoints"
        " DROP COLUMN failing_since, DROP COLUMN disable_time"
    )

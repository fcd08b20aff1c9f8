"""Webhook endpoints a merchant changes: a description, the secret before the last roll with
when it stops signing, and when the endpoint was deleted (kept, so its deliveries keep their
endpoint).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE invoicing.webhook_endpoints"
        " ADD COLUMN description text NOT NULL DEFAULT '',"
        " ADD COLUMN previous_sealed_secret bytea,"
        " ADD COLUMN previous_secret_expire_time timestamptz,"
        " ADD COLUMN delete_time timestamptz"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE invoicing.webhook_endpoints"
        " DROP COLUMN description, DROP COLUMN previous_sealed_secret,"
        " DROP COLUMN previous_secret_expire_time, DROP COLUMN delete_time"
    )

"""Subscriptions carry their plan's entitlements: the features it includes (a JSON array), and
its usage limits per event key (quantities as decimal strings, never floats), which ingestion
enforces when hard.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE metering.subscriptions"
        " ADD COLUMN features jsonb NOT NULL DEFAULT '[]',"
        " ADD COLUMN limits jsonb NOT NULL DEFAULT '[]'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE metering.subscriptions DROP COLUMN features, DROP COLUMN limits")

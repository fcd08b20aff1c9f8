"""Auto-pay: a plan's usage ceiling, the most usage a period may add above its fixed fee under a
mandate (the hosted checkout proposes the fee plus this as the mandate's cap).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-14
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE invoicing.plans ADD COLUMN usage_ceiling numeric(30, 6) NOT NULL DEFAULT 0"
        " CHECK (usage_ceiling >= 0)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE invoicing.plans DROP COLUMN usage_ceiling")

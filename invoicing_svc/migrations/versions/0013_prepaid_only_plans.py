"""Prepaid-only plans: their usage is paid from the subscriber's credits, and metering refuses
an event the credits cannot pay for.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE invoicing.plans ADD COLUMN prepaid_only boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE invoicing.plans DROP COLUMN prepaid_only")

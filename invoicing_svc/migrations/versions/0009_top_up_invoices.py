"""Paid top-ups: an invoice may be a credit top-up, whose payment buys the subscriber prepaid
credits (settlement grants them).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-22
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE invoicing.invoices ADD COLUMN top_up boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE invoicing.invoices DROP COLUMN top_up")

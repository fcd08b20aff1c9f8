"""The outbox parks what its consumer refused for good (dead letters, service_kit/outbox.py), and
an invoice whose period prices at or beyond the bound of money is held as a DRAFT with its
reason.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from alembic import op

from service_kit.outbox import dead_letter_downgrade, dead_letter_upgrade

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in dead_letter_upgrade("invoicing"):
        op.execute(statement)
    op.execute("ALTER TABLE invoicing.invoices ADD COLUMN hold_reason text NOT NULL DEFAULT ''")


def downgrade() -> None:
    op.execute("ALTER TABLE invoicing.invoices DROP COLUMN hold_reason")
    for statement in dead_letter_downgrade("invoicing"):
        op.execute(statement)

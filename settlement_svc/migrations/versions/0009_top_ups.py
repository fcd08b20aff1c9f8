"""Paid top-ups: the top-up invoices the ledger recorded, and credit grants of source TOP_UP,
one per top-up invoice.

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
    op.execute("""
        CREATE TABLE settlement.top_ups (
            merchant_id text NOT NULL,
            invoice_id text NOT NULL,
            user_id text NOT NULL,
            amount numeric(30, 6) NOT NULL CHECK (amount > 0),
            PRIMARY KEY (merchant_id, invoice_id)
        )
    """)
    op.execute(
        "ALTER TABLE settlement.credit_grants DROP CONSTRAINT credit_grants_source_check,"
        " ADD CONSTRAINT credit_grants_source_check"
        " CHECK (source IN ('PROMOTIONAL', 'PAYMENT', 'TOP_UP'))"
    )
    # A top-up invoice grants its credits once, whichever payment settles it.
    op.execute(
        "CREATE UNIQUE INDEX credit_grants_topped_up_once ON settlement.credit_grants"
        " (merchant_id, reference) WHERE source = 'TOP_UP'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX settlement.credit_grants_topped_up_once")
    op.execute(
        "ALTER TABLE settlement.credit_grants DROP CONSTRAINT credit_grants_source_check,"
        " ADD CONSTRAINT credit_grants_source_check CHECK (source IN ('PROMOTIONAL', 'PAYMENT'))"
    )
    op.execute("DROP TABLE settlement.top_ups")

"""Prepaid credits: each subscriber's credit balance as settlement last reported it (the period
close asks settlement to spend credits only for subscribers who hold some), and what credits paid
of each invoice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-21
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE invoicing.credit_balances (
            merchant_id text NOT NULL,
            user_id text NOT NULL,
            balance numeric(30, 6) NOT NULL CHECK (balance >= 0),
            -- Settlement's version of the balance: an older report arriving late is ignored.
            version bigint NOT NULL CHECK (version >= 1),
            update_time timestamptz NOT NULL,
            PRIMARY KEY (merchant_id, user_id)
        )
    """)
    op.execute(
        "ALTER TABLE invoicing.invoices ADD COLUMN credits_applied numeric(30, 6) NOT NULL"
        " DEFAULT 0 CHECK (credits_applied >= 0)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE invoicing.invoices DROP COLUMN credits_applied")
    op.execute("DROP TABLE invoicing.credit_balances")

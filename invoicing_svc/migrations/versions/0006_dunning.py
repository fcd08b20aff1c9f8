"""Dunning: every failed attempt to collect an invoice (settlement reports them), and the
merchant's setting for what happens after the last one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_REASONS = (
    "'INSUFFICIENT_BALANCE', 'ALLOWANCE_TOO_LOW', 'CAP_EXCEEDED', 'MANDATE_REVOKED',"
    " 'MANDATE_EXPIRED', 'NO_MANDATE', 'REVERTED'"
)


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE invoicing.payment_attempts (
            id text PRIMARY KEY,
            merchant_id text NOT NULL,
            invoice_id text NOT NULL REFERENCES invoicing.invoices (id),
            number integer NOT NULL CHECK (number >= 1),
            attempt_time timestamptz NOT NULL,
            reason text NOT NULL CHECK (reason IN ({_REASONS})),
            detail text NOT NULL DEFAULT '',
            -- NULL: the last attempt of the schedule.
            next_attempt_time timestamptz,
            CONSTRAINT payment_attempts_once UNIQUE (invoice_id, number)
        )
    """)
    op.execute("""
        CREATE TABLE invoicing.merchant_settings (
            merchant_id text PRIMARY KEY,
            dunning_final_action text NOT NULL DEFAULT 'PAST_DUE'
                CHECK (dunning_final_action IN ('CANCEL', 'PAST_DUE')),
            update_time timestamptz NOT NULL
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE invoicing.merchant_settings")
    op.execute("DROP TABLE invoicing.payment_attempts")

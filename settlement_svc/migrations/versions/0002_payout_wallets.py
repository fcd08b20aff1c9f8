"""Payout wallets on record, and transaction uniqueness that no merchant can use against another.

A settlement's payee is the merchant's payout wallet, never a field of the request, and a wallet
is one merchant's only. A transaction hash is unique among one merchant's live settlements and
among all confirmed ones: another merchant's pending proof of the same (public) transaction no
longer blocks the merchant it paid.

Merchants that existed before this revision have no payout wallet: their next submission answers
FAILED_PRECONDITION until `python -m gateway set-wallet` registers one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE settlement.payout_wallets (
        merchant_id text PRIMARY KEY,
        wallet_address text NOT NULL,
        update_time timestamptz NOT NULL,
        -- Stored EIP-55 checksummed, so one spelling per address.
        CONSTRAINT payout_wallets_one_merchant UNIQUE (wallet_address)
    )
    """,
    "ALTER TABLE settlement.settlements DROP CONSTRAINT settlements_transaction_once",
    """
    CREATE UNIQUE INDEX settlements_transaction_live_per_merchant
    ON settlement.settlements (merchant_id, transaction_hash) WHERE status <> 'FAILED'
    """,
    """
    CREATE UNIQUE INDEX settlements_transaction_confirmed_once
    ON settlement.settlements (transaction_hash) WHERE status = 'CONFIRMED'
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX settlement.settlements_transaction_confirmed_once")
    op.execute("DROP INDEX settlement.settlements_transaction_live_per_merchant")
    op.execute(
        "ALTER TABLE settlement.settlements "
        "ADD CONSTRAINT settlements_transaction_once UNIQUE (transaction_hash)"
    )
    op.execute("DROP TABLE settlement.payout_wallets")

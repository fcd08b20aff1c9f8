"""Merchants' wallets move to settlement's payout wallets: one record of the payee, where payments
are verified, instead of a copy here that a request could contradict.

A merchant created before this revision registers its wallet again with
`python -m gateway set-wallet --merchant ID --wallet 0x...` (one service cannot write another's
schema, so this migration cannot carry the wallets over).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE gateway.merchants DROP COLUMN wallet_address")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE gateway.merchants ADD COLUMN wallet_address text NOT NULL "
        "DEFAULT '0x0000000000000000000000000000000000000000'"
    )

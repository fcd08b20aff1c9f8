"""A stuck outgoing transaction replaced at a higher fee, at the same nonce.

The row of an account's nonce keeps the newest signed transaction; the hashes it replaced stay
listed, since any one of them may be the one mined. `sign_time` is when the newest was signed
(a replacement waits that long again before the next).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE settlement.outgoing_transactions
            ADD COLUMN replaced_hashes text[] NOT NULL DEFAULT '{}',
            ADD COLUMN sign_time timestamptz
        """
    )
    op.execute("UPDATE settlement.outgoing_transactions SET sign_time = create_time")
    op.execute("ALTER TABLE settlement.outgoing_transactions ALTER COLUMN sign_time SET NOT NULL")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE settlement.outgoing_transactions"
        " DROP COLUMN replaced_hashes, DROP COLUMN sign_time"
    )

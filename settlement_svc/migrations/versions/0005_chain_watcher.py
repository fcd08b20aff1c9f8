"""The chain watcher: its cursor, the hashes of the blocks it read, and credits.

The cursor is the next block to read; it moves in the transaction that records what the blocks
held, so a crash re-reads a range whole or not at all. Block hashes find a reorg (a stored hash
the node no longer has). A credit is a payment that reached a merchant's wallet bound to a
request it cannot settle (expired, already paid, short): posted to the subscriber's credit
account once final.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE settlement.watcher_cursor (
        id integer PRIMARY KEY CHECK (id = 1),
        next_block bigint NOT NULL CHECK (next_block >= 0)
    )
    """,
    """
    CREATE TABLE settlement.watched_blocks (
        number bigint PRIMARY KEY,
        hash text NOT NULL
    )
    """,
    """
    CREATE TABLE settlement.credits (
        transaction_hash text NOT NULL,
        log_index bigint NOT NULL,
        merchant_id text NOT NULL,
        user_id text NOT NULL,
        reference_hash text NOT NULL,
        amount numeric(30, 6) NOT NULL CHECK (amount > 0),
        reason text NOT NULL CHECK (reason IN ('EXPIRED', 'ALREADY_PAID', 'SHORT_AMOUNT')),
        block_number bigint NOT NULL,
        block_hash text NOT NULL,
        status text NOT NULL CHECK (status IN ('PENDING', 'POSTED')),
        create_time timestamptz NOT NULL,
        PRIMARY KEY (transaction_hash, log_index)
    )
    """,
    "CREATE INDEX credits_pending ON settlement.credits (block_number) WHERE status = 'PENDING'",
    """
    CREATE INDEX settlements_watched ON settlement.settlements (block_number)
    WHERE origin = 'WATCHER' AND status = 'PENDING'
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX settlement.settlements_watched")
    op.execute(
        "DROP TABLE settlement.credits, settlement.watched_blocks, settlement.watcher_cursor"
    )

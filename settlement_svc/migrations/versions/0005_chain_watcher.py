"""The chain watcher: its cursor, the hashes of the blocks it read, and credits.

The cursor (one per token followed) is the next block to read; it moves in the transaction that
records what the blocks held, so a crash re-reads a range whole or not at all. It also counts
what the watcher recognised, exactly once per recording. Block hashes find a reorg (a stored
hash the node no longer has). A credit is a payment that reached a merchant's wallet bound to a
request it cannot settle: PENDING until its block is final, then POSTED to the subscriber's
credit account, and immutable from then on.

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
    CREATE TABLE settlement.watcher_cursors (
        token_address text PRIMARY KEY,
        next_block bigint NOT NULL CHECK (next_block >= 0),
        payments_recognised bigint NOT NULL DEFAULT 0,
        credits_recorded bigint NOT NULL DEFAULT 0
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
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        user_id text NOT NULL,
        reference_hash text NOT NULL REFERENCES settlement.payment_requests (reference_hash),
        invoice_id text,
        checkout_session_id text,
        transaction_hash text NOT NULL,
        log_index bigint NOT NULL,
        payer_wallet_address text NOT NULL,
        amount numeric(30, 6) NOT NULL CHECK (amount > 0),
        reason text NOT NULL
            CHECK (reason IN (
                'EXPIRED', 'ALREADY_PAID', 'SHORT_AMOUNT', 'TRANSACTION_USED', 'VOIDED'
            )),
        block_number bigint NOT NULL,
        block_hash text NOT NULL,
        status text NOT NULL CHECK (status IN ('PENDING', 'POSTED')),
        create_time timestamptz NOT NULL,
        post_time timestamptz,
        CHECK ((invoice_id IS NULL) <> (checkout_session_id IS NULL)),
        CHECK ((status = 'POSTED') = (post_time IS NOT NULL)),
        -- A payment (its Transfer log) is credited once.
        CONSTRAINT credits_payment_once UNIQUE (transaction_hash, log_index)
    )
    """,
    "CREATE INDEX credits_pending ON settlement.credits (block_number) WHERE status = 'PENDING'",
    "CREATE INDEX credits_of_merchant ON settlement.credits (merchant_id, status)",
    # A posted credit is in the ledger: it never changes again.
    """
    CREATE FUNCTION settlement.keep_posted_credit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status = 'POSTED' THEN
            RAISE EXCEPTION 'credit % is posted and immutable', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
    END
    $$
    """,
    """
    CREATE TRIGGER credits_posted_immutable BEFORE UPDATE OR DELETE ON settlement.credits
    FOR EACH ROW EXECUTE FUNCTION settlement.keep_posted_credit()
    """,
    # What a reorg makes the watcher forget: its pending settlements above the fork.
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
        "DROP TABLE settlement.credits, settlement.watched_blocks, settlement.watcher_cursors"
    )
    op.execute("DROP FUNCTION settlement.keep_posted_credit()")

"""Settlement schema: settlements, the append-only balanced journal, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE settlement.settlements (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        invoice_id text,
        checkout_session_id text,
        user_id text NOT NULL,
        reference_hash text NOT NULL,
        transaction_hash text NOT NULL,
        payer_wallet_address text NOT NULL,
        merchant_wallet_address text NOT NULL,
        amount_due numeric(30, 6) NOT NULL CHECK (amount_due > 0),
        status text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'FAILED')),
        failure_reason text,
        failure_detail text NOT NULL DEFAULT '',
        amount_paid numeric(30, 6),
        block_number bigint,
        confirmations bigint NOT NULL DEFAULT 0,
        create_time timestamptz NOT NULL,
        confirm_time timestamptz,
        CHECK ((invoice_id IS NULL) <> (checkout_session_id IS NULL)),
        -- A transaction settles at most one payment, across all merchants.
        CONSTRAINT settlements_transaction_once UNIQUE (transaction_hash)
    )
    """,
    # One live (pending or confirmed) settlement per invoice or checkout.
    """
    CREATE UNIQUE INDEX settlements_live_per_invoice ON settlement.settlements (invoice_id)
    WHERE status <> 'FAILED'
    """,
    """
    CREATE UNIQUE INDEX settlements_live_per_checkout
    ON settlement.settlements (checkout_session_id) WHERE status <> 'FAILED'
    """,
    "CREATE INDEX settlements_listing ON settlement.settlements (merchant_id, create_time, id)",
    """
    CREATE INDEX settlements_pending ON settlement.settlements (create_time)
    WHERE status = 'PENDING'
    """,
    """
    CREATE TABLE settlement.journal_transactions (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        kind text NOT NULL,
        reference text NOT NULL,
        create_time timestamptz NOT NULL,
        -- A business event is posted once.
        CONSTRAINT journal_posted_once UNIQUE (merchant_id, kind, reference)
    )
    """,
    """
    CREATE TABLE settlement.journal_entries (
        transaction_id text NOT NULL REFERENCES settlement.journal_transactions (id),
        line_number integer NOT NULL,
        merchant_id text NOT NULL,
        account text NOT NULL,
        debit numeric(30, 6) NOT NULL CHECK (debit >= 0),
        credit numeric(30, 6) NOT NULL CHECK (credit >= 0),
        currency text NOT NULL DEFAULT 'USDC',
        CHECK ((debit > 0) <> (credit > 0)),
        PRIMARY KEY (transaction_id, line_number)
    )
    """,
    "CREATE INDEX journal_entries_by_account ON settlement.journal_entries (merchant_id, account)",
    """
    CREATE FUNCTION settlement.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER journal_transactions_append_only
    BEFORE UPDATE OR DELETE ON settlement.journal_transactions
    FOR EACH ROW EXECUTE FUNCTION settlement.refuse_change()
    """,
    """
    CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON settlement.journal_entries
    FOR EACH ROW EXECUTE FUNCTION settlement.refuse_change()
    """,
    # Checked at commit, once all entries of a transaction are in: debits equal credits.
    """
    CREATE FUNCTION settlement.check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        difference numeric;
    BEGIN
        SELECT sum(debit) - sum(credit) INTO difference
        FROM settlement.journal_entries WHERE transaction_id = NEW.transaction_id;
        IF difference <> 0 THEN
            RAISE EXCEPTION 'journal transaction % is unbalanced by %',
                NEW.transaction_id, difference USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER journal_entries_balanced
    AFTER INSERT ON settlement.journal_entries DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION settlement.check_balanced()
    """,
    # A confirmed settlement is the record of a payment: it never changes again.
    """
    CREATE FUNCTION settlement.keep_confirmed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status = 'CONFIRMED' THEN
            RAISE EXCEPTION 'settlement % is confirmed and immutable', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
    END
    $$
    """,
    """
    CREATE TRIGGER settlements_confirmed_immutable BEFORE UPDATE OR DELETE ON settlement.settlements
    FOR EACH ROW EXECUTE FUNCTION settlement.keep_confirmed()
    """,
    """
    CREATE TABLE settlement.outbox (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        merchant_id text NOT NULL,
        topic text NOT NULL,
        payload jsonb NOT NULL,
        create_time timestamptz NOT NULL,
        available_time timestamptz NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        delivered_time timestamptz,
        last_error text
    )
    """,
    "CREATE INDEX outbox_due ON settlement.outbox (available_time) WHERE delivered_time IS NULL",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE settlement.journal_entries, settlement.journal_transactions, "
        "settlement.settlements, settlement.outbox"
    )
    op.execute("DROP FUNCTION settlement.refuse_change(), settlement.check_balanced()")
    op.execute("DROP FUNCTION settlement.keep_confirmed()")

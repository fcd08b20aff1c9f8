"""Payment requests, relayed authorizations and the relayer's outgoing transactions.

A payment request binds a payment to one invoice or checkout session on chain: its reference
hash is the nonce of the payer's EIP-3009 authorization, so USDC itself records which request a
transfer paid. The payee, token and chain are fixed when the request is issued.

An outgoing transaction is stored signed before it is sent (nonce unique per account): after a
crash it is sent again, never signed twice. A relay is unique per (payer, nonce), the on-chain
authorization slot, so one authorization is relayed once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE settlement.payment_requests (
        reference_hash text PRIMARY KEY,
        merchant_id text NOT NULL,
        invoice_id text,
        checkout_session_id text,
        user_id text NOT NULL,
        amount numeric(30, 6) NOT NULL CHECK (amount > 0),
        payee_wallet_address text NOT NULL,
        token_address text NOT NULL,
        chain_id bigint NOT NULL,
        create_time timestamptz NOT NULL,
        expire_time timestamptz NOT NULL CHECK (expire_time > create_time),
        CHECK ((invoice_id IS NULL) <> (checkout_session_id IS NULL))
    )
    """,
    """
    CREATE INDEX payment_requests_of_invoice
    ON settlement.payment_requests (invoice_id, create_time) WHERE invoice_id IS NOT NULL
    """,
    """
    CREATE INDEX payment_requests_of_checkout
    ON settlement.payment_requests (checkout_session_id, create_time)
    WHERE checkout_session_id IS NOT NULL
    """,
    # LocateInvoice: the owner of an invoice, found by its id alone.
    """
    CREATE INDEX journal_invoices_by_reference ON settlement.journal_transactions (reference)
    WHERE kind = 'invoice'
    """,
    # How a settlement reached us: a submitted proof, our relay, or the chain watcher.
    """
    ALTER TABLE settlement.settlements ADD COLUMN origin text NOT NULL DEFAULT 'PROOF'
    CHECK (origin IN ('PROOF', 'RELAY', 'WATCHER'))
    """,
    "CREATE INDEX settlements_by_reference ON settlement.settlements (reference_hash)",
    """
    CREATE TABLE settlement.outgoing_transactions (
        id text PRIMARY KEY,
        account text NOT NULL,
        nonce bigint NOT NULL,
        transaction_hash text NOT NULL UNIQUE,
        raw_transaction bytea NOT NULL,
        status text NOT NULL CHECK (status IN ('SIGNED', 'SENT', 'MINED')),
        send_attempts integer NOT NULL DEFAULT 0,
        create_time timestamptz NOT NULL,
        send_time timestamptz,
        last_error text NOT NULL DEFAULT '',
        CONSTRAINT outgoing_transactions_nonce_once UNIQUE (account, nonce)
    )
    """,
    """
    CREATE INDEX outgoing_transactions_unmined ON settlement.outgoing_transactions (create_time)
    WHERE status <> 'MINED'
    """,
    """
    CREATE TABLE settlement.relays (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        reference_hash text NOT NULL REFERENCES settlement.payment_requests (reference_hash),
        payer_wallet_address text NOT NULL,
        settlement_id text NOT NULL REFERENCES settlement.settlements (id),
        outgoing_transaction_id text NOT NULL
            REFERENCES settlement.outgoing_transactions (id),
        create_time timestamptz NOT NULL,
        -- The authorization slot on chain: one relay per payer and nonce.
        CONSTRAINT relays_authorization_once UNIQUE (payer_wallet_address, reference_hash)
    )
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE settlement.relays, settlement.outgoing_transactions")
    op.execute("DROP INDEX settlement.settlements_by_reference")
    op.execute("ALTER TABLE settlement.settlements DROP COLUMN origin")
    op.execute("DROP TABLE settlement.payment_requests")
    op.execute("DROP INDEX settlement.journal_invoices_by_reference")

"""Mandates and collections.

A mandate is the platform's record of a subscriber's mandate on the mandate contract: PENDING
once its signed creation is relayed, ACTIVE once the contract holds it, REVOKED or EXPIRED as the
chain says. A collection is one invoice to collect under a mandate, at most one per invoice; its
attempts are kept, each with the reason it failed and when the next is due. A collection that
sends its transaction makes a settlement (origin MANDATE) the verifier confirms like any other.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE settlement.mandates (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        user_id text NOT NULL,
        subscription_id text NOT NULL,
        payer_wallet_address text NOT NULL,
        merchant_wallet_address text NOT NULL,
        contract_address text NOT NULL,
        cap numeric(30, 6) NOT NULL CHECK (cap > 0),
        period_seconds bigint NOT NULL CHECK (period_seconds > 0),
        expire_time timestamptz NOT NULL,
        status text NOT NULL CHECK (status IN ('PENDING', 'ACTIVE', 'REVOKED', 'EXPIRED')),
        transaction_hash text NOT NULL,
        create_time timestamptz NOT NULL,
        update_time timestamptz NOT NULL
    )
    """,
    # The mandate a subscriber's invoices are collected under: the newest live one.
    """
    CREATE INDEX mandates_of_user ON settlement.mandates (merchant_id, user_id, create_time)
    WHERE status IN ('PENDING', 'ACTIVE')
    """,
    "CREATE INDEX mandates_of_subscription ON settlement.mandates (merchant_id, subscription_id)",
    """
    CREATE TABLE settlement.collections (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        invoice_id text NOT NULL,
        user_id text NOT NULL,
        mandate_id text NOT NULL REFERENCES settlement.mandates (id),
        -- The collect call's reference: the contract pays it at most once.
        reference_hash text NOT NULL UNIQUE,
        amount numeric(30, 6) NOT NULL CHECK (amount > 0),
        status text NOT NULL CHECK (status IN ('DUE', 'SENT', 'DONE')),
        failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
        next_attempt_time timestamptz,
        first_failure_time timestamptz,
        settlement_id text REFERENCES settlement.settlements (id),
        create_time timestamptz NOT NULL,
        -- One collection per invoice, whatever delivers the invoice twice.
        CONSTRAINT collections_invoice_once UNIQUE (merchant_id, invoice_id),
        CHECK ((status = 'DUE') = (next_attempt_time IS NOT NULL))
    )
    """,
    """
    CREATE INDEX collections_due ON settlement.collections (next_attempt_time)
    WHERE status = 'DUE'
    """,
    """
    CREATE TABLE settlement.collection_attempts (
        collection_id text NOT NULL REFERENCES settlement.collections (id),
        number integer NOT NULL CHECK (number > 0),
        attempt_time timestamptz NOT NULL,
        failure text CHECK (failure IN (
            'INSUFFICIENT_BALANCE', 'ALLOWANCE_TOO_LOW', 'CAP_EXCEEDED', 'MANDATE_REVOKED',
            'MANDATE_EXPIRED', 'NO_MANDATE', 'REVERTED'
        )),
        detail text NOT NULL,
        next_attempt_time timestamptz,
        PRIMARY KEY (collection_id, number)
    )
    """,
    "ALTER TABLE settlement.settlements DROP CONSTRAINT settlements_origin_check",
    """
    ALTER TABLE settlement.settlements ADD CONSTRAINT settlements_origin_check
    CHECK (origin IN ('PROOF', 'RELAY', 'WATCHER', 'MANDATE'))
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE settlement.settlements DROP CONSTRAINT settlements_origin_check")
    op.execute(
        "ALTER TABLE settlement.settlements ADD CONSTRAINT settlements_origin_check"
        " CHECK (origin IN ('PROOF', 'RELAY', 'WATCHER'))"
    )
    op.execute(
        "DROP TABLE settlement.collection_attempts, settlement.collections, settlement.mandates"
    )

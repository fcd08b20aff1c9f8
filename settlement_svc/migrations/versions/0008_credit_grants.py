"""Prepaid credits: grants, what each invoice's finalization spent of them, and balance versions.

A grant's `remaining` is what it has left; the sum over a subscriber's grants equals the balance
of the ledger account credit:<user>. A grant funded by a payment names the settlement or credit
whose USDC it holds, once. An application (one per key: a period of a subscription, or a
merchant's invoice) spends credits once; its uses say which grants it took from, so that what it
gives back returns to them. The version of a subscriber's credits counts the changes, so
invoicing keeps the latest balance it was told; its row is also what serialises the changes of
one subscriber's credits.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE settlement.credit_grants (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        user_id text NOT NULL,
        source text NOT NULL CHECK (source IN ('PROMOTIONAL', 'PAYMENT')),
        amount numeric(30, 6) NOT NULL CHECK (amount > 0),
        remaining numeric(30, 6) NOT NULL CHECK (remaining >= 0),
        expired_amount numeric(30, 6) NOT NULL DEFAULT 0 CHECK (expired_amount >= 0),
        priority integer NOT NULL CHECK (priority BETWEEN 0 AND 1000),
        expire_time timestamptz,
        description text NOT NULL,
        reference text NOT NULL,
        request_id text NOT NULL,
        create_time timestamptz NOT NULL,
        CHECK (remaining + expired_amount <= amount)
    )
    """,
    # A payment's excess is credited once.
    """
    CREATE UNIQUE INDEX credit_grants_funded_once ON settlement.credit_grants
        (merchant_id, reference) WHERE source = 'PAYMENT'
    """,
    """
    CREATE UNIQUE INDEX credit_grants_request_once ON settlement.credit_grants
        (merchant_id, request_id) WHERE request_id <> ''
    """,
    "CREATE INDEX credit_grants_of_user ON settlement.credit_grants (merchant_id, user_id)",
    """
    CREATE INDEX credit_grants_to_expire ON settlement.credit_grants (expire_time)
        WHERE remaining > 0 AND expire_time IS NOT NULL
    """,
    """
    CREATE TABLE settlement.credit_applications (
        merchant_id text NOT NULL,
        key text NOT NULL,
        invoice_id text NOT NULL,
        user_id text NOT NULL,
        amount numeric(30, 6) NOT NULL CHECK (amount >= 0),
        update_time timestamptz NOT NULL,
        PRIMARY KEY (merchant_id, key)
    )
    """,
    """
    CREATE INDEX credit_applications_of_invoice ON settlement.credit_applications
        (merchant_id, invoice_id)
    """,
    """
    CREATE TABLE settlement.credit_uses (
        merchant_id text NOT NULL,
        key text NOT NULL,
        grant_id text NOT NULL REFERENCES settlement.credit_grants (id),
        -- The order the application spent its grants in.
        position integer NOT NULL,
        amount numeric(30, 6) NOT NULL CHECK (amount >= 0),
        PRIMARY KEY (merchant_id, key, grant_id),
        FOREIGN KEY (merchant_id, key) REFERENCES settlement.credit_applications
    )
    """,
    """
    CREATE TABLE settlement.credit_accounts (
        merchant_id text NOT NULL,
        user_id text NOT NULL,
        version bigint NOT NULL CHECK (version >= 1),
        PRIMARY KEY (merchant_id, user_id)
    )
    """,
    # What payments credited before: a grant each, so that the credit accounts hold what the
    # grants have left from the start.
    """
    INSERT INTO settlement.credit_grants (id, merchant_id, user_id, source, amount, remaining,
        priority, description, reference, request_id, create_time)
    SELECT 'crg_' || substr(md5(t.id), 1, 26), t.merchant_id, substr(e.account, 8), 'PAYMENT',
        e.credit, e.credit, 0, 'paid beyond what was owed', t.reference, '', t.create_time
    FROM settlement.journal_transactions t
    JOIN settlement.journal_entries e ON e.transaction_id = t.id
    WHERE e.account LIKE 'credit:%' AND e.credit > 0
    """,
    """
    INSERT INTO settlement.credit_accounts (merchant_id, user_id, version)
    SELECT DISTINCT merchant_id, user_id, 1 FROM settlement.credit_grants
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE settlement.credit_uses, settlement.credit_applications,"
        " settlement.credit_grants, settlement.credit_accounts"
    )

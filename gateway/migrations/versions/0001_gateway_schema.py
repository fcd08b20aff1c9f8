"""Gateway schema: merchants, hashed API keys, idempotent responses, checkout owners.

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
    CREATE TABLE gateway.merchants (
        id text PRIMARY KEY,
        name text NOT NULL,
        wallet_address text NOT NULL,
        create_time timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE gateway.api_keys (
        id text PRIMARY KEY,
        merchant_id text NOT NULL REFERENCES gateway.merchants (id),
        secret_hash bytea NOT NULL,
        create_time timestamptz NOT NULL,
        revoke_time timestamptz
    )
    """,
    """
    CREATE TABLE gateway.idempotent_responses (
        merchant_id text NOT NULL,
        idempotency_key text NOT NULL,
        fingerprint text NOT NULL,
        status_code integer,
        body bytea,
        create_time timestamptz NOT NULL,
        PRIMARY KEY (merchant_id, idempotency_key)
    )
    """,
    "CREATE INDEX idempotent_responses_age ON gateway.idempotent_responses (create_time)",
    """
    CREATE TABLE gateway.checkout_owners (
        session_id text PRIMARY KEY,
        merchant_id text NOT NULL REFERENCES gateway.merchants (id)
    )
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE gateway.checkout_owners, gateway.idempotent_responses, gateway.api_keys, "
        "gateway.merchants"
    )

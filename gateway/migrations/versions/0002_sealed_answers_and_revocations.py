"""Stored idempotent answers are sealed (service_kit/secret_box.py under GATEWAY_SECRETS_KEY: an
answer may carry a webhook signing secret), and revoking an API key bumps a version that every
gateway polls.

Answers stored before this revision are sealed with GATEWAY_SECRETS_KEY, which the migration then
needs; a table without answers needs no key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import os

import sqlalchemy as sa
from alembic import op

from service_kit.secret_box import SecretBox

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE gateway.idempotent_responses RENAME COLUMN body TO sealed_body")
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT merchant_id, idempotency_key, sealed_body FROM gateway.idempotent_responses"
            " WHERE sealed_body IS NOT NULL"
        )
    ).all()
    if rows:
        box = SecretBox(os.environ.get("GATEWAY_SECRETS_KEY", ""), setting="GATEWAY_SECRETS_KEY")
        for merchant_id, key, body in rows:
            connection.execute(
                sa.text(
                    "UPDATE gateway.idempotent_responses SET sealed_body = :sealed"
                    " WHERE merchant_id = :merchant_id AND idempotency_key = :key"
                ),
                {"sealed": box.seal(bytes(body).decode()), "merchant_id": merchant_id, "key": key},
            )
    op.execute(
        """
        CREATE TABLE gateway.key_revocations (
            id boolean PRIMARY KEY DEFAULT true CHECK (id),
            version bigint NOT NULL
        )
        """
    )
    op.execute("INSERT INTO gateway.key_revocations (id, version) VALUES (true, 0)")


def downgrade() -> None:
    raise NotImplementedError("stored answers are not decrypted back into the table")

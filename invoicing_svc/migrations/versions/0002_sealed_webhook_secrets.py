"""Webhook signing secrets are stored encrypted (invoicing_svc/adapters/secret_box.py).

Endpoints registered before this revision have their secrets sealed with INVOICING_SECRETS_KEY,
which the migration then needs; an empty table needs no key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import os

import sqlalchemy as sa
from alembic import op

from invoicing_svc.adapters.secret_box import SecretBox

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE invoicing.webhook_endpoints ADD COLUMN sealed_secret bytea")
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, secret FROM invoicing.webhook_endpoints")).all()
    if rows:
        box = SecretBox(os.environ.get("INVOICING_SECRETS_KEY", ""))
        for endpoint_id, secret in rows:
            connection.execute(
                sa.text(
                    "UPDATE invoicing.webhook_endpoints SET sealed_secret = :sealed WHERE id = :id"
                ),
                {"sealed": box.seal(secret), "id": endpoint_id},
            )
    op.execute("ALTER TABLE invoicing.webhook_endpoints ALTER COLUMN sealed_secret SET NOT NULL")
    op.execute("ALTER TABLE invoicing.webhook_endpoints DROP COLUMN secret")


def downgrade() -> None:
    raise NotImplementedError("secrets are not decrypted back into the table")

"""Auto top-ups: a subscription's standing order to buy prepaid credits whenever its
subscriber's balance falls below a threshold.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-22
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE invoicing.auto_top_ups (
            subscription_id text PRIMARY KEY,
            merchant_id text NOT NULL,
            user_id text NOT NULL,
            threshold numeric(30, 6) NOT NULL CHECK (threshold >= 0),
            amount numeric(30, 6) NOT NULL CHECK (amount > 0),
            update_time timestamptz NOT NULL
        )
    """)
    op.execute("CREATE INDEX auto_top_ups_of_user ON invoicing.auto_top_ups (merchant_id, user_id)")
    # The unpaid top-ups of a subscriber: an auto top-up waits while one is on its way.
    op.execute(
        "CREATE INDEX invoices_unpaid_top_ups ON invoicing.invoices (merchant_id, user_id)"
        " WHERE top_up AND status IN ('DRAFT', 'OPEN', 'UNCOLLECTIBLE')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX invoicing.invoices_unpaid_top_ups")
    op.execute("DROP TABLE invoicing.auto_top_ups")

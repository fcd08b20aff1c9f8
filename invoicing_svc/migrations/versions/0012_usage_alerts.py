"""Usage alerts and their crossings, and interim invoices (progressive billing).

A crossing is unique per alert, subscription, period and event type: whoever records it first
sends it, every other attempt finds it there. An interim invoice shares its period's start with
the period's own invoice, so "one invoice per period" now holds for the others only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE invoicing.usage_alerts (
            id text PRIMARY KEY,
            merchant_id text NOT NULL,
            plan_id text REFERENCES invoicing.plans (id),
            subscription_id text REFERENCES invoicing.subscriptions (id),
            kind text NOT NULL,
            event_key text NOT NULL,
            threshold numeric(40, 12) NOT NULL CHECK (threshold >= 0),
            action text NOT NULL,
            create_time timestamptz NOT NULL,
            delete_time timestamptz,
            CHECK ((plan_id IS NULL) <> (subscription_id IS NULL))
        )
    """)
    op.execute(
        "CREATE INDEX usage_alerts_of_plan ON invoicing.usage_alerts (plan_id)"
        " WHERE delete_time IS NULL AND plan_id IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX usage_alerts_of_subscription ON invoicing.usage_alerts (subscription_id)"
        " WHERE delete_time IS NULL AND subscription_id IS NOT NULL"
    )
    op.execute("""
        CREATE TABLE invoicing.usage_alert_crossings (
            alert_id text NOT NULL REFERENCES invoicing.usage_alerts (id),
            subscription_id text NOT NULL REFERENCES invoicing.subscriptions (id),
            period_start timestamptz NOT NULL,
            event_type text NOT NULL,
            merchant_id text NOT NULL,
            user_id text NOT NULL,
            threshold numeric NOT NULL,
            value numeric NOT NULL,
            period_end timestamptz NOT NULL,
            invoice_id text,
            cross_time timestamptz NOT NULL,
            PRIMARY KEY (alert_id, subscription_id, period_start, event_type)
        )
    """)
    op.execute(
        "CREATE INDEX usage_alert_crossings_of_subscription"
        " ON invoicing.usage_alert_crossings (subscription_id, cross_time DESC)"
    )
    op.execute("ALTER TABLE invoicing.invoices ADD COLUMN interim boolean NOT NULL DEFAULT false")
    op.execute("ALTER TABLE invoicing.invoices DROP CONSTRAINT invoices_one_per_period")
    op.execute(
        "CREATE UNIQUE INDEX invoices_one_per_period ON invoicing.invoices"
        " (subscription_id, period_start) WHERE NOT interim"
    )
    op.execute(
        "CREATE INDEX invoices_interim ON invoicing.invoices (subscription_id, period_start)"
        " WHERE interim"
    )


def downgrade() -> None:
    op.execute("DROP INDEX invoicing.invoices_interim")
    op.execute("DELETE FROM invoicing.invoices WHERE interim")
    op.execute("DROP INDEX invoicing.invoices_one_per_period")
    op.execute(
        "ALTER TABLE invoicing.invoices ADD CONSTRAINT invoices_one_per_period"
        " UNIQUE (subscription_id, period_start)"
    )
    op.execute("ALTER TABLE invoicing.invoices DROP COLUMN interim")
    op.execute("DROP TABLE invoicing.usage_alert_crossings")
    op.execute("DROP TABLE invoicing.usage_alerts")

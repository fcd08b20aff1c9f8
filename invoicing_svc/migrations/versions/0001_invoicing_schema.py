"""Invoicing schema: catalog, checkout, subscriptions, invoices, webhooks, outbox.

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
    CREATE TABLE invoicing.services (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        create_time timestamptz NOT NULL
    )
    """,
    "CREATE INDEX services_listing ON invoicing.services (merchant_id, create_time, id)",
    """
    CREATE TABLE invoicing.plans (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        service_id text NOT NULL REFERENCES invoicing.services (id),
        name text NOT NULL,
        pricing_type text NOT NULL
            CHECK (pricing_type IN ('FIXED_RECURRING', 'USAGE_BASED', 'HYBRID')),
        billing_interval text NOT NULL CHECK (billing_interval IN ('DAY', 'WEEK', 'MONTH', 'YEAR')),
        interval_count integer NOT NULL CHECK (interval_count BETWEEN 1 AND 36),
        amount numeric(30, 12),
        currency text NOT NULL DEFAULT 'USDC',
        charges jsonb NOT NULL DEFAULT '[]',
        create_time timestamptz NOT NULL
    )
    """,
    "CREATE INDEX plans_listing ON invoicing.plans (merchant_id, create_time, id)",
    """
    CREATE TABLE invoicing.subscribers (
        merchant_id text NOT NULL,
        id text NOT NULL,
        email text NOT NULL DEFAULT '',
        name text NOT NULL DEFAULT '',
        create_time timestamptz NOT NULL,
        PRIMARY KEY (merchant_id, id)
    )
    """,
    """
    CREATE TABLE invoicing.checkout_sessions (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        plan_id text NOT NULL REFERENCES invoicing.plans (id),
        user_id text NOT NULL,
        success_url text NOT NULL,
        cancel_url text NOT NULL,
        status text NOT NULL CHECK (status IN ('OPEN', 'AWAITING_PAYMENT', 'COMPLETE')),
        amount_due numeric(30, 6) NOT NULL,
        payment_transaction_hash text,
        payer_wallet_address text,
        settlement_id text,
        subscription_id text,
        create_time timestamptz NOT NULL,
        complete_time timestamptz
    )
    """,
    """
    CREATE TABLE invoicing.subscriptions (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        service_id text NOT NULL,
        plan_id text NOT NULL REFERENCES invoicing.plans (id),
        user_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('ACTIVE', 'PAST_DUE', 'CANCELED')),
        billing_anchor timestamptz NOT NULL,
        period_index integer NOT NULL,
        current_period_start timestamptz NOT NULL,
        current_period_end timestamptz NOT NULL,
        cancel_at_period_end boolean NOT NULL DEFAULT false,
        cancel_time timestamptz,
        fee_prepaid_until timestamptz,
        test_clock_time timestamptz,
        version bigint NOT NULL,
        create_time timestamptz NOT NULL,
        CHECK (current_period_end > current_period_start)
    )
    """,
    "CREATE INDEX subscriptions_listing ON invoicing.subscriptions (merchant_id, create_time, id)",
    # The period-close scheduler looks for subscriptions whose period has ended.
    """
    CREATE INDEX subscriptions_due ON invoicing.subscriptions (current_period_end)
    WHERE status <> 'CANCELED'
    """,
    """
    CREATE TABLE invoicing.invoices (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        subscription_id text NOT NULL REFERENCES invoicing.subscriptions (id),
        service_id text NOT NULL,
        user_id text NOT NULL,
        plan_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('DRAFT', 'OPEN', 'PAID', 'VOID', 'UNCOLLECTIBLE')),
        period_start timestamptz,
        period_end timestamptz,
        currency text NOT NULL DEFAULT 'USDC',
        amount numeric(30, 6) NOT NULL CHECK (amount >= 0),
        settlement_id text,
        create_time timestamptz NOT NULL,
        finalize_time timestamptz,
        due_time timestamptz,
        paid_time timestamptz,
        -- One invoice per subscription and billing period.
        CONSTRAINT invoices_one_per_period UNIQUE (subscription_id, period_start)
    )
    """,
    "CREATE INDEX invoices_listing ON invoicing.invoices (merchant_id, create_time, id)",
    "CREATE INDEX invoices_overdue ON invoicing.invoices (due_time) WHERE status = 'OPEN'",
    """
    CREATE TABLE invoicing.invoice_lines (
        invoice_id text NOT NULL REFERENCES invoicing.invoices (id),
        line_number integer NOT NULL,
        merchant_id text NOT NULL,
        description text NOT NULL,
        event_key text NOT NULL DEFAULT '',
        quantity numeric NOT NULL,
        amount numeric(30, 6) NOT NULL,
        PRIMARY KEY (invoice_id, line_number)
    )
    """,
    """
    CREATE TABLE invoicing.webhook_endpoints (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        url text NOT NULL,
        event_types text[] NOT NULL,
        secret text NOT NULL,
        create_time timestamptz NOT NULL
    )
    """,
    "CREATE INDEX webhook_endpoints_listing "
    "ON invoicing.webhook_endpoints (merchant_id, create_time, id)",
    """
    CREATE TABLE invoicing.webhook_deliveries (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        endpoint_id text NOT NULL REFERENCES invoicing.webhook_endpoints (id),
        event_id text NOT NULL,
        event_type text NOT NULL,
        body text NOT NULL,
        status text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
        attempt_count integer NOT NULL DEFAULT 0,
        next_attempt_time timestamptz NOT NULL,
        lease_until timestamptz,
        last_status_code integer NOT NULL DEFAULT 0,
        last_error text NOT NULL DEFAULT '',
        create_time timestamptz NOT NULL,
        CONSTRAINT webhook_deliveries_once UNIQUE (endpoint_id, event_id)
    )
    """,
    """
    CREATE INDEX webhook_deliveries_due ON invoicing.webhook_deliveries (next_attempt_time)
    WHERE status = 'PENDING'
    """,
    """
    CREATE TABLE invoicing.webhook_attempts (
        delivery_id text NOT NULL REFERENCES invoicing.webhook_deliveries (id),
        attempt_number integer NOT NULL,
        merchant_id text NOT NULL,
        attempt_time timestamptz NOT NULL,
        status_code integer NOT NULL,
        error text NOT NULL DEFAULT '',
        duration_ms integer NOT NULL,
        PRIMARY KEY (delivery_id, attempt_number)
    )
    """,
    """
    CREATE TABLE invoicing.outbox (
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
    "CREATE INDEX outbox_due ON invoicing.outbox (available_time) WHERE delivered_time IS NULL",
    """
    CREATE TABLE invoicing.idempotency_records (
        merchant_id text NOT NULL,
        request_id text NOT NULL,
        method text NOT NULL,
        fingerprint text NOT NULL,
        response bytea,
        create_time timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (merchant_id, request_id)
    )
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE invoicing.webhook_attempts, invoicing.webhook_deliveries, "
        "invoicing.webhook_endpoints, invoicing.invoice_lines, invoicing.invoices, "
        "invoicing.checkout_sessions, invoicing.subscriptions, invoicing.subscribers, "
        "invoicing.plans, invoicing.services, invoicing.outbox, invoicing.idempotency_records"
    )

"""Metering schema: meters, subscription and invoice replicas, partitioned usage events, rollups.

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
    CREATE TABLE metering.meters (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        service_id text NOT NULL,
        event_key text NOT NULL,
        aggregation text NOT NULL
            CHECK (aggregation IN ('SUM', 'COUNT', 'MAX', 'LAST', 'UNIQUE_COUNT')),
        unique_property text NOT NULL DEFAULT '',
        display_name text NOT NULL,
        create_time timestamptz NOT NULL,
        CONSTRAINT meters_event_key_unique UNIQUE (merchant_id, service_id, event_key)
    )
    """,
    "CREATE INDEX meters_listing ON metering.meters (merchant_id, create_time, id)",
    """
    CREATE TABLE metering.subscriptions (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        service_id text NOT NULL,
        user_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('ACTIVE', 'PAST_DUE', 'CANCELED')),
        current_period_start timestamptz NOT NULL,
        current_period_end timestamptz NOT NULL,
        version bigint NOT NULL,
        update_time timestamptz NOT NULL,
        CHECK (current_period_end > current_period_start)
    )
    """,
    """
    CREATE TABLE metering.invoice_references (
        id text PRIMARY KEY,
        merchant_id text NOT NULL,
        service_id text NOT NULL,
        user_id text NOT NULL,
        update_time timestamptz NOT NULL
    )
    """,
    # Append-only, partitioned by month of occurred_at. Every unique key leads with
    # subscription_id, the distribution column on a sharded (Citus) deployment.
    "CREATE SEQUENCE metering.usage_event_seq",
    """
    CREATE TABLE metering.usage_events (
        subscription_id text NOT NULL,
        id text NOT NULL,
        occurred_at timestamptz NOT NULL,
        merchant_id text NOT NULL,
        service_id text NOT NULL,
        user_id text NOT NULL,
        event_key text NOT NULL,
        quantity numeric(28, 12) NOT NULL CHECK (quantity >= 0),
        invoice_id text,
        idempotency_key text,
        properties jsonb NOT NULL DEFAULT '{}',
        receive_time timestamptz NOT NULL,
        seq bigint NOT NULL DEFAULT nextval('metering.usage_event_seq'),
        PRIMARY KEY (subscription_id, id, occurred_at)
    ) PARTITION BY RANGE (occurred_at)
    """,
    "CREATE INDEX usage_events_by_time "
    "ON metering.usage_events (subscription_id, occurred_at, seq)",
    "CREATE INDEX usage_events_by_id ON metering.usage_events (id)",
    # Deduplication lives beside the events: a key must be unique per subscription whatever
    # partition its event lands in.
    """
    CREATE TABLE metering.usage_event_keys (
        subscription_id text NOT NULL,
        idempotency_key text NOT NULL,
        merchant_id text NOT NULL,
        event_id text NOT NULL,
        PRIMARY KEY (subscription_id, idempotency_key)
    )
    """,
    """
    CREATE TABLE metering.usage_event_cancellations (
        subscription_id text NOT NULL,
        event_id text NOT NULL,
        merchant_id text NOT NULL,
        reason text NOT NULL,
        cancel_time timestamptz NOT NULL,
        PRIMARY KEY (subscription_id, event_id)
    )
    """,
    # Hourly rollups per (subscription, event key), maintained in the ingesting transaction.
    """
    CREATE TABLE metering.usage_rollups (
        subscription_id text NOT NULL,
        event_key text NOT NULL,
        bucket_start timestamptz NOT NULL,
        merchant_id text NOT NULL,
        total numeric NOT NULL,
        event_count bigint NOT NULL,
        max_quantity numeric,
        last_quantity numeric,
        last_occurred_at timestamptz,
        last_seq bigint,
        PRIMARY KEY (subscription_id, event_key, bucket_start)
    )
    """,
    """
    CREATE TABLE metering.usage_unique_values (
        subscription_id text NOT NULL,
        event_key text NOT NULL,
        property text NOT NULL,
        bucket_start timestamptz NOT NULL,
        value text NOT NULL,
        merchant_id text NOT NULL,
        event_count bigint NOT NULL,
        PRIMARY KEY (subscription_id, event_key, property, bucket_start, value)
    )
    """,
    """
    CREATE TABLE metering.idempotency_records (
        merchant_id text NOT NULL,
        request_id text NOT NULL,
        method text NOT NULL,
        fingerprint text NOT NULL,
        response bytea,
        create_time timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (merchant_id, request_id)
    )
    """,
    """
    CREATE FUNCTION metering.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER usage_events_append_only BEFORE UPDATE OR DELETE ON metering.usage_events
    FOR EACH ROW EXECUTE FUNCTION metering.refuse_change()
    """,
    """
    CREATE TRIGGER usage_event_cancellations_append_only
    BEFORE UPDATE OR DELETE ON metering.usage_event_cancellations
    FOR EACH ROW EXECUTE FUNCTION metering.refuse_change()
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE metering.usage_events, metering.usage_event_keys CASCADE")
    op.execute(
        "DROP TABLE metering.usage_event_cancellations, metering.usage_rollups, "
        "metering.usage_unique_values, metering.meters, metering.subscriptions, "
        "metering.invoice_references, metering.idempotency_records"
    )
    op.execute("DROP FUNCTION metering.refuse_change()")
    op.execute("DROP SEQUENCE metering.usage_event_seq")

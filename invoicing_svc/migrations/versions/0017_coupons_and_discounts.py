"""Coupons (a merchant's offers) and discounts (a coupon applied to a subscription or to a
customer), at most one running per subscription and one per customer.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE invoicing.coupons (
            id text PRIMARY KEY,
            merchant_id text NOT NULL,
            name text NOT NULL,
            percent_off numeric(5, 2) CHECK (percent_off > 0 AND percent_off <= 100),
            amount_off numeric(30, 6) CHECK (amount_off > 0),
            duration text NOT NULL CHECK (duration IN ('ONCE', 'REPEATING', 'FOREVER')),
            duration_periods integer NOT NULL DEFAULT 0,
            max_redemptions integer CHECK (max_redemptions >= 1),
            redeem_by timestamptz,
            times_redeemed integer NOT NULL DEFAULT 0
                CHECK (max_redemptions IS NULL OR times_redeemed <= max_redemptions),
            create_time timestamptz NOT NULL,
            CHECK ((percent_off IS NULL) <> (amount_off IS NULL))
        )
    """)
    op.execute("CREATE INDEX coupons_listing ON invoicing.coupons (merchant_id, create_time, id)")
    op.execute("""
        CREATE TABLE invoicing.discounts (
            id text PRIMARY KEY,
            merchant_id text NOT NULL,
            coupon_id text NOT NULL REFERENCES invoicing.coupons (id),
            subscription_id text NOT NULL,
            user_id text NOT NULL,
            periods_left integer CHECK (periods_left >= 0),
            create_time timestamptz NOT NULL,
            end_time timestamptz
        )
    """)
    op.execute(
        "CREATE UNIQUE INDEX discounts_one_per_subscription ON invoicing.discounts"
        " (subscription_id) WHERE end_time IS NULL AND subscription_id <> ''"
    )
    op.execute(
        "CREATE UNIQUE INDEX discounts_one_per_customer ON invoicing.discounts"
        " (merchant_id, user_id) WHERE end_time IS NULL AND subscription_id = ''"
    )
    op.execute(
        "CREATE INDEX discounts_listing ON invoicing.discounts (merchant_id, create_time, id)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE invoicing.discounts")
    op.execute("DROP TABLE invoicing.coupons")

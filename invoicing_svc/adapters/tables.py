"""ORM rows of the invoicing schema."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service_kit.idempotency import idempotency_table
from service_kit.outbox import outbox_table

SCHEMA = "invoicing"
Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class ServiceRow(Base):
    __tablename__ = "services"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class PlanRow(Base):
    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    service_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    pricing_type: Mapped[str] = mapped_column(Text)
    billing_interval: Mapped[str] = mapped_column(Text)
    interval_count: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(30, 12))
    currency: Mapped[str] = mapped_column(Text)
    charges: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    usage_ceiling: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    features: Mapped[list[str]] = mapped_column(ARRAY(Text))
    limits: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    prepaid_only: Mapped[bool] = mapped_column(Boolean)
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    trial_usage_billed: Mapped[bool] = mapped_column(Boolean, default=False)
    trial_end_action: Mapped[str] = mapped_column(Text, default="CONVERT")
    version: Mapped[int] = mapped_column(Integer, default=1)
    version_of: Mapped[str] = mapped_column(Text, default="")
    superseded_by: Mapped[str] = mapped_column(Text, default="")


class SubscriberRow(Base):
    __tablename__ = "subscribers"

    merchant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class CheckoutSessionRow(Base):
    __tablename__ = "checkout_sessions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    plan_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    success_url: Mapped[str] = mapped_column(Text)
    cancel_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    amount_due: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    payment_transaction_hash: Mapped[str | None] = mapped_column(Text)
    payer_wallet_address: Mapped[str | None] = mapped_column(Text)
    settlement_id: Mapped[str | None] = mapped_column(Text)
    subscription_id: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    complete_time: Mapped[datetime | None] = mapped_column(Timestamp)


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    service_id: Mapped[str] = mapped_column(Text)
    plan_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    billing_anchor: Mapped[datetime] = mapped_column(Timestamp)
    period_index: Mapped[int] = mapped_column(Integer)
    current_period_start: Mapped[datetime] = mapped_column(Timestamp)
    current_period_end: Mapped[datetime] = mapped_column(Timestamp)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean)
    cancel_time: Mapped[datetime | None] = mapped_column(Timestamp)
    fee_prepaid_until: Mapped[datetime | None] = mapped_column(Timestamp)
    test_clock_time: Mapped[datetime | None] = mapped_column(Timestamp)
    version: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    # Plan changes: [{plan_id, fee_plan_id, end}] and [{description, event_key, quantity,
    # amount}], decimals and times as strings.
    plan_segments: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    fee_plan_id: Mapped[str] = mapped_column(Text, default="")
    scheduled_plan_id: Mapped[str] = mapped_column(Text, default="")
    pending_lines: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    pause_time: Mapped[datetime | None] = mapped_column(Timestamp)
    usage_from: Mapped[datetime | None] = mapped_column(Timestamp)
    trial_end: Mapped[datetime | None] = mapped_column(Timestamp)
    trial_reminded: Mapped[bool] = mapped_column(Boolean, default=False)
    mandate_id: Mapped[str] = mapped_column(Text, default="")
    mandate_expire_time: Mapped[datetime | None] = mapped_column(Timestamp)


class InvoiceRow(Base):
    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    subscription_id: Mapped[str] = mapped_column(Text)
    service_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    plan_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    period_start: Mapped[datetime | None] = mapped_column(Timestamp)
    period_end: Mapped[datetime | None] = mapped_column(Timestamp)
    currency: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    settlement_id: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    finalize_time: Mapped[datetime | None] = mapped_column(Timestamp)
    due_time: Mapped[datetime | None] = mapped_column(Timestamp)
    paid_time: Mapped[datetime | None] = mapped_column(Timestamp)
    hold_reason: Mapped[str] = mapped_column(Text, server_default="")
    credits_applied: Mapped[Decimal] = mapped_column(Numeric(30, 6), server_default="0")
    top_up: Mapped[bool] = mapped_column(Boolean, server_default="false")
    interim: Mapped[bool] = mapped_column(Boolean, server_default="false")


class UsageAlertRow(Base):
    __tablename__ = "usage_alerts"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    plan_id: Mapped[str | None] = mapped_column(Text)
    subscription_id: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    event_key: Mapped[str] = mapped_column(Text)
    threshold: Mapped[Decimal] = mapped_column(Numeric(40, 12))
    action: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    delete_time: Mapped[datetime | None] = mapped_column(Timestamp)


class UsageAlertCrossingRow(Base):
    __tablename__ = "usage_alert_crossings"

    alert_id: Mapped[str] = mapped_column(Text, primary_key=True)
    subscription_id: Mapped[str] = mapped_column(Text, primary_key=True)
    period_start: Mapped[datetime] = mapped_column(Timestamp, primary_key=True)
    event_type: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    threshold: Mapped[Decimal] = mapped_column(Numeric)
    value: Mapped[Decimal] = mapped_column(Numeric)
    period_end: Mapped[datetime] = mapped_column(Timestamp)
    invoice_id: Mapped[str | None] = mapped_column(Text)
    cross_time: Mapped[datetime] = mapped_column(Timestamp)


class AutoTopUpRow(Base):
    __tablename__ = "auto_top_ups"

    subscription_id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    threshold: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    update_time: Mapped[datetime] = mapped_column(Timestamp)


class CreditBalanceRow(Base):
    """A subscriber's credit balance as settlement last reported it."""

    __tablename__ = "credit_balances"

    merchant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    balance: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    version: Mapped[int] = mapped_column(BigInteger)
    update_time: Mapped[datetime] = mapped_column(Timestamp)


class InvoiceLineRow(Base):
    __tablename__ = "invoice_lines"

    invoice_id: Mapped[str] = mapped_column(Text, primary_key=True)
    line_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    event_key: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Numeric)
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))


class PaymentAttemptRow(Base):
    __tablename__ = "payment_attempts"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    invoice_id: Mapped[str] = mapped_column(Text)
    number: Mapped[int] = mapped_column(Integer)
    attempt_time: Mapped[datetime] = mapped_column(Timestamp)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    # None: the last attempt of the schedule.
    next_attempt_time: Mapped[datetime | None] = mapped_column(Timestamp)


class MerchantSettingsRow(Base):
    __tablename__ = "merchant_settings"

    merchant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    dunning_final_action: Mapped[str] = mapped_column(Text)
    update_time: Mapped[datetime] = mapped_column(Timestamp)


class WebhookEndpointRow(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # Encrypted by adapters/secret_box.py.
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    # The first failed attempt since the last success; None while the endpoint succeeds.
    failing_since: Mapped[datetime | None] = mapped_column(Timestamp)
    # Set once it has failed for too long; a disabled endpoint gets no deliveries.
    disable_time: Mapped[datetime | None] = mapped_column(Timestamp)
    description: Mapped[str] = mapped_column(Text, default="")
    # The secret before the last roll, which still signs deliveries until its expire time.
    previous_sealed_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expire_time: Mapped[datetime | None] = mapped_column(Timestamp)
    # A deleted endpoint is disabled and found no more; its row keeps its deliveries' history.
    delete_time: Mapped[datetime | None] = mapped_column(Timestamp)


class WebhookDeliveryRow(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    endpoint_id: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    attempt_count: Mapped[int] = mapped_column(Integer)
    next_attempt_time: Mapped[datetime] = mapped_column(Timestamp)
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp)
    last_status_code: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class WebhookAttemptRow(Base):
    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[str] = mapped_column(Text, primary_key=True)
    attempt_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    attempt_time: Mapped[datetime] = mapped_column(Timestamp)
    status_code: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


idempotency_records = idempotency_table(Base.metadata, SCHEMA)
outbox = outbox_table(Base.metadata, SCHEMA)


class CouponRow(Base):
    __tablename__ = "coupons"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    percent_off: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    amount_off: Mapped[Decimal | None] = mapped_column(Numeric(30, 6))
    duration: Mapped[str] = mapped_column(Text)
    duration_periods: Mapped[int] = mapped_column(Integer)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    redeem_by: Mapped[datetime | None] = mapped_column(Timestamp)
    times_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class DiscountRow(Base):
    __tablename__ = "discounts"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    coupon_id: Mapped[str] = mapped_column(Text)
    # "" for a customer's discount.
    subscription_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    periods_left: Mapped[int | None] = mapped_column(Integer)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    end_time: Mapped[datetime | None] = mapped_column(Timestamp)

"""ORM rows of the metering schema. Event tables are reached with bulk SQL (event_store.py)."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, MetaData, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service_kit.idempotency import idempotency_table

SCHEMA = "metering"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class MeterRow(Base):
    __tablename__ = "meters"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    service_id: Mapped[str] = mapped_column(Text)
    event_key: Mapped[str] = mapped_column(Text)
    aggregation: Mapped[str] = mapped_column(Text)
    unique_property: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    service_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    current_period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    current_period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(BigInteger)
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    test_clock_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    features: Mapped[list[str]] = mapped_column(JSONB)
    # [{"event_key", "quantity" (a decimal string), "hard"}]
    limits: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    prepaid: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class InvoiceReferenceRow(Base):
    __tablename__ = "invoice_references"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    service_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


idempotency_records = idempotency_table(Base.metadata, SCHEMA)

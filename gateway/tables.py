"""The gateway's own schema: merchants, their hashed API keys and the revocation version, stored
idempotent responses, and which merchant owns each checkout session (for the public hosted
page)."""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, LargeBinary, MetaData, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "gateway"
Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class MerchantRow(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    # SHA-256 of the key's secret part; the key itself is never stored.
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    revoke_time: Mapped[datetime | None] = mapped_column(Timestamp)


class IdempotentResponseRow(Base):
    __tablename__ = "idempotent_responses"

    merchant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(Text, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    # The answer's JSON, sealed (service_kit/secret_box.py): it may carry a webhook secret.
    sealed_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class KeyRevocationsRow(Base):
    """One row counting revocations: revoking a key bumps it in the same transaction, and every
    gateway polls it to drop the keys it remembers once it moved."""

    __tablename__ = "key_revocations"

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class CheckoutOwnerRow(Base):
    __tablename__ = "checkout_owners"

    session_id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)

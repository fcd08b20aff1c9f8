"""ORM rows of the settlement schema."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, MetaData, Numeric, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service_kit.outbox import outbox_table

SCHEMA = "settlement"
Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class SettlementRow(Base):
    __tablename__ = "settlements"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    invoice_id: Mapped[str | None] = mapped_column(Text)
    checkout_session_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    reference_hash: Mapped[str] = mapped_column(Text)
    transaction_hash: Mapped[str] = mapped_column(Text)
    payer_wallet_address: Mapped[str] = mapped_column(Text)
    merchant_wallet_address: Mapped[str] = mapped_column(Text)
    amount_due: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    status: Mapped[str] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    failure_detail: Mapped[str] = mapped_column(Text)
    amount_paid: Mapped[Decimal | None] = mapped_column(Numeric(30, 6))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    confirmations: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    confirm_time: Mapped[datetime | None] = mapped_column(Timestamp)
    origin: Mapped[str] = mapped_column(Text)


class PaymentRequestRow(Base):
    __tablename__ = "payment_requests"

    reference_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    invoice_id: Mapped[str | None] = mapped_column(Text)
    checkout_session_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    payee_wallet_address: Mapped[str] = mapped_column(Text)
    token_address: Mapped[str] = mapped_column(Text)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    expire_time: Mapped[datetime] = mapped_column(Timestamp)


class PayoutWalletRow(Base):
    __tablename__ = "payout_wallets"

    merchant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    wallet_address: Mapped[str] = mapped_column(Text)
    update_time: Mapped[datetime] = mapped_column(Timestamp)


class OutgoingTransactionRow(Base):
    __tablename__ = "outgoing_transactions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    account: Mapped[str] = mapped_column(Text)
    nonce: Mapped[int] = mapped_column(BigInteger)
    transaction_hash: Mapped[str] = mapped_column(Text)
    raw_transaction: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(Text)
    send_attempts: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    send_time: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str] = mapped_column(Text)
    replaced_hashes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    sign_time: Mapped[datetime] = mapped_column(Timestamp)


class RelayRow(Base):
    __tablename__ = "relays"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    reference_hash: Mapped[str] = mapped_column(Text)
    payer_wallet_address: Mapped[str] = mapped_column(Text)
    settlement_id: Mapped[str] = mapped_column(Text)
    outgoing_transaction_id: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class WatcherCursorRow(Base):
    __tablename__ = "watcher_cursors"

    token_address: Mapped[str] = mapped_column(Text, primary_key=True)
    next_block: Mapped[int] = mapped_column(BigInteger)
    payments_recognised: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_recorded: Mapped[int] = mapped_column(BigInteger, default=0)


class WatchedBlockRow(Base):
    __tablename__ = "watched_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(Text)


class CreditRow(Base):
    __tablename__ = "credits"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    reference_hash: Mapped[str] = mapped_column(Text)
    invoice_id: Mapped[str | None] = mapped_column(Text)
    checkout_session_id: Mapped[str | None] = mapped_column(Text)
    transaction_hash: Mapped[str] = mapped_column(Text)
    log_index: Mapped[int] = mapped_column(BigInteger)
    payer_wallet_address: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    reason: Mapped[str] = mapped_column(Text)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    post_time: Mapped[datetime | None] = mapped_column(Timestamp)


class MandateRow(Base):
    __tablename__ = "mandates"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    subscription_id: Mapped[str] = mapped_column(Text)
    payer_wallet_address: Mapped[str] = mapped_column(Text)
    merchant_wallet_address: Mapped[str] = mapped_column(Text)
    contract_address: Mapped[str] = mapped_column(Text)
    cap: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    period_seconds: Mapped[int] = mapped_column(BigInteger)
    expire_time: Mapped[datetime] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(Text)
    transaction_hash: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)
    update_time: Mapped[datetime] = mapped_column(Timestamp)


class CollectionRow(Base):
    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    invoice_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    mandate_id: Mapped[str] = mapped_column(Text)
    reference_hash: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    status: Mapped[str] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer)
    next_attempt_time: Mapped[datetime | None] = mapped_column(Timestamp)
    first_failure_time: Mapped[datetime | None] = mapped_column(Timestamp)
    settlement_id: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class CollectionAttemptRow(Base):
    __tablename__ = "collection_attempts"

    collection_id: Mapped[str] = mapped_column(Text, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_time: Mapped[datetime] = mapped_column(Timestamp)
    failure: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    next_attempt_time: Mapped[datetime | None] = mapped_column(Timestamp)


class JournalTransactionRow(Base):
    __tablename__ = "journal_transactions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class JournalEntryRow(Base):
    __tablename__ = "journal_entries"

    transaction_id: Mapped[str] = mapped_column(Text, primary_key=True)
    line_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    account: Mapped[str] = mapped_column(Text)
    debit: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    credit: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    currency: Mapped[str] = mapped_column(Text)


class CreditGrantRow(Base):
    __tablename__ = "credit_grants"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    remaining: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    expired_amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    priority: Mapped[int] = mapped_column(Integer)
    expire_time: Mapped[datetime | None] = mapped_column(Timestamp)
    description: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(Timestamp)


class CreditApplicationRow(Base):
    __tablename__ = "credit_applications"

    merchant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    invoice_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    update_time: Mapped[datetime] = mapped_column(Timestamp)


class CreditUseRow(Base):
    __tablename__ = "credit_uses"

    merchant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    grant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))


class TopUpRow(Base):
    """A top-up invoice the ledger recorded; its payment grants `amount` of credits."""

    __tablename__ = "top_ups"

    merchant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    invoice_id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 6))


class CreditAccountRow(Base):
    __tablename__ = "credit_accounts"

    merchant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


outbox = outbox_table(Base.metadata, SCHEMA)

"""Settlement's domain types."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class SettlementStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"


class InvoiceStatus(StrEnum):
    """An invoice's status at invoicing."""

    DRAFT = "DRAFT"
    OPEN = "OPEN"
    PAID = "PAID"
    VOID = "VOID"
    UNCOLLECTIBLE = "UNCOLLECTIBLE"


class CheckoutStatus(StrEnum):
    """A checkout session's status at invoicing."""

    OPEN = "OPEN"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    COMPLETE = "COMPLETE"


class SettlementOrigin(StrEnum):
    """How a payment reached settlement."""

    # A transaction hash submitted as proof.
    PROOF = "PROOF"
    # An EIP-3009 authorization our relayer submitted.
    RELAY = "RELAY"
    # A used authorization the chain watcher found, whoever submitted it.
    WATCHER = "WATCHER"
    # A collection our collector made under the subscriber's mandate.
    MANDATE = "MANDATE"


class FailureReason(StrEnum):
    REVERTED = "REVERTED"
    NO_TRANSFER = "NO_TRANSFER"
    WRONG_TOKEN = "WRONG_TOKEN"
    WRONG_PAYER = "WRONG_PAYER"
    WRONG_RECIPIENT = "WRONG_RECIPIENT"
    SHORT_AMOUNT = "SHORT_AMOUNT"
    EXPIRED = "EXPIRED"
    TRANSACTION_USED = "TRANSACTION_USED"


@dataclass(frozen=True)
class Settlement:
    id: str
    merchant_id: str
    invoice_id: str
    checkout_session_id: str
    user_id: str
    reference_hash: str
    transaction_hash: str
    payer_wallet_address: str
    merchant_wallet_address: str
    amount_due: Decimal
    status: SettlementStatus
    create_time: datetime
    failure_reason: FailureReason | None = None
    failure_detail: str = ""
    amount_paid: Decimal | None = None
    block_number: int | None = None
    confirmations: int = 0
    confirm_time: datetime | None = None
    origin: SettlementOrigin = SettlementOrigin.PROOF


@dataclass(frozen=True)
class Payable:
    """An invoice or a checkout session, as far as paying it is concerned."""

    status: InvoiceStatus | CheckoutStatus
    amount_due: Decimal
    user_id: str
    # For a checkout: the proof the subscriber submitted.
    transaction_hash: str = ""
    payer_wallet_address: str = ""


@dataclass(frozen=True)
class PayoutWallet:
    """The wallet a merchant is paid in, from the platform's records."""

    merchant_id: str
    wallet_address: str
    update_time: datetime


@dataclass(frozen=True)
class TokenTransfer:
    """An ERC-20 Transfer log: `token` is the contract that emitted it."""

    token: str
    sender: str
    receiver: str
    value: int


@dataclass(frozen=True)
class TransactionFacts:
    """What the chain says of a mined transaction."""

    succeeded: bool
    block_number: int
    confirmations: int
    transfers: tuple[TokenTransfer, ...]

"""Credits: payments that reached a merchant's wallet bound to a request they cannot settle.

The chain watcher records one per payment (transaction and Transfer log), PENDING while its block
may still be reorganised away; once final it is POSTED to the ledger as the subscriber's credit
and never changes again.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from settlement_svc.domain.chain_logs import CreditReason


class CreditStatus(StrEnum):
    PENDING = "PENDING"
    POSTED = "POSTED"


@dataclass(frozen=True)
class Credit:
    id: str
    merchant_id: str
    user_id: str
    # The request the payment was bound to, and its invoice or checkout session.
    reference_hash: str
    invoice_id: str
    checkout_session_id: str
    transaction_hash: str
    log_index: int
    payer_wallet_address: str
    amount: Decimal
    reason: CreditReason
    block_number: int
    block_hash: str
    status: CreditStatus
    create_time: datetime
    post_time: datetime | None = None

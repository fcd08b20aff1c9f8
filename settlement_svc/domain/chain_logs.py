"""What the token's logs say of payment requests: each used EIP-3009 authorization, paired with
the transfer it made, judged against the request whose reference hash is its nonce. Pure.

USDC's transferWithAuthorization (and receiveWithAuthorization) emits AuthorizationUsed(authorizer,
nonce) and then Transfer(authorizer, to, value), in one call of one transaction.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from settlement_svc.domain.model import TokenTransfer
from settlement_svc.domain.payment_requests import PaymentRequest

AUTHORIZATION_USED_TOPIC = "0x" + keccak(text="AuthorizationUsed(address,bytes32)").hex()
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()

Log = Mapping[str, Any]


@lru_cache(maxsize=65_536)
def _checksummed(address: str) -> str:
    """EIP-55 spelling (a keccak each: cached, the token and busy wallets come back often)."""
    return str(to_checksum_address(address))


def address_of(topic: str) -> str:
    """The address an indexed topic holds, EIP-55 spelled."""
    return _checksummed("0x" + topic[-40:].lower())


def transfer(log: Log) -> TokenTransfer | None:
    """Decodes a standard Transfer(address indexed, address indexed, uint256) log."""
    topics, data = log["topics"], log["data"]
    if len(topics) != 3 or topics[0].lower() != TRANSFER_TOPIC or len(data) != 2 + 64:
        return None
    return TokenTransfer(
        token=_checksummed(log["address"].lower()),
        sender=address_of(topics[1]),
        receiver=address_of(topics[2]),
        value=int(data, 16),
    )


@dataclass(frozen=True)
class UsedAuthorization:
    """An authorization the token executed, with the transfer it made. `log_index` is the
    Transfer's: with the transaction it names the payment once."""

    transaction_hash: str
    log_index: int
    block_number: int
    block_hash: str
    authorizer: str
    nonce: str
    transfer: TokenTransfer


def used_authorizations(logs: Sequence[Log]) -> list[UsedAuthorization]:
    """Each AuthorizationUsed paired with the next Transfer from its authorizer in the same
    transaction, in chain order. Logs a reorg removed (`removed`) are left out. Only paired
    transfers are decoded: the same query answers every plain transfer of the token too."""
    live = [log for log in logs if not log.get("removed")]
    ordered = sorted(live, key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
    found = []
    # (transaction, authorizer's topic) -> nonces waiting for their transfer, oldest first.
    waiting: dict[tuple[str, str], list[str]] = {}
    for log in ordered:
        topics = [topic.lower() for topic in log["topics"]]
        if len(topics) != 3:
            continue
        key = (log["transactionHash"].lower(), topics[1])
        if topics[0] == AUTHORIZATION_USED_TOPIC:
            waiting.setdefault(key, []).append(topics[2])
        elif topics[0] == TRANSFER_TOPIC and waiting.get(key):
            moved = transfer(log)
            if moved is None:
                continue
            found.append(
                UsedAuthorization(
                    transaction_hash=key[0],
                    log_index=int(log["logIndex"], 16),
                    block_number=int(log["blockNumber"], 16),
                    block_hash=log["blockHash"].lower(),
                    authorizer=moved.sender,
                    nonce=waiting[key].pop(0),
                    transfer=moved,
                )
            )
    return found


class Outcome(StrEnum):
    # Pays its request: a PENDING settlement is made, which the verifier confirms.
    SETTLE = "SETTLE"
    # Reached the request's payee but cannot settle it: the subscriber's credit.
    CREDIT = "CREDIT"
    # Counted already by a settlement of this transaction (our relay's, or a submitted proof).
    RECORDED = "RECORDED"
    # No request of ours carries this nonce, or the money went elsewhere: not our merchant's.
    IGNORE = "IGNORE"


class CreditReason(StrEnum):
    EXPIRED = "EXPIRED"
    ALREADY_PAID = "ALREADY_PAID"
    SHORT_AMOUNT = "SHORT_AMOUNT"
    # The transaction settles another payment already (one transaction settles one payment).
    TRANSACTION_USED = "TRANSACTION_USED"
    # The merchant voided the invoice: nothing is owed on it any more.
    VOIDED = "VOIDED"


@dataclass(frozen=True)
class Known:
    """What settlement already holds that bears on one payment."""

    # The payer of the merchant's live settlement of this transaction, if it has one.
    transaction_payer: str | None = None
    # Whether the request's invoice or checkout has a live settlement of another transaction.
    payable_settled: bool = False
    # Whether the ledger recorded the request's invoice as voided.
    payable_voided: bool = False


def judge(
    used: UsedAuthorization, request: PaymentRequest | None, block_time: datetime, known: Known
) -> tuple[Outcome, CreditReason | None]:
    """A payment settles only the request whose reference it carries, only when it reached that
    request's payee in its token; money that reached the payee but cannot settle is credited,
    never lost, and never counted twice. Expiry is judged at the block's time."""
    moved = used.transfer
    if (
        request is None
        or moved.receiver.lower() != request.payee.lower()
        or moved.token.lower() != request.token.lower()
        or moved.value == 0
    ):
        return Outcome.IGNORE, None
    if known.transaction_payer is not None:
        # The verifier counts every transfer of that payer to the wallet in the transaction.
        if known.transaction_payer.lower() == used.authorizer.lower():
            return Outcome.RECORDED, None
        return Outcome.CREDIT, CreditReason.TRANSACTION_USED
    if known.payable_settled:
        return Outcome.CREDIT, CreditReason.ALREADY_PAID
    if known.payable_voided:
        return Outcome.CREDIT, CreditReason.VOIDED
    if request.expired(block_time):
        return Outcome.CREDIT, CreditReason.EXPIRED
    if moved.value < request.amount_base_units:
        return Outcome.CREDIT, CreditReason.SHORT_AMOUNT
    return Outcome.SETTLE, None

"""What the token's logs say of payment requests: each used EIP-3009 authorization, paired with
the transfer it made, judged against the request whose reference hash is its nonce. Pure.

USDC's transferWithAuthorization (and receiveWithAuthorization) emits AuthorizationUsed(authorizer,
nonce) and then Transfer(authorizer, to, value), in one transaction.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from settlement_svc.domain.payment_requests import PaymentRequest

AUTHORIZATION_USED_TOPIC = "0x" + keccak(text="AuthorizationUsed(address,bytes32)").hex()
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


@dataclass(frozen=True)
class UsedAuthorization:
    """An authorization the token executed, with the transfer it made."""

    transaction_hash: str
    log_index: int
    block_number: int
    block_hash: str
    authorizer: str
    nonce: str
    receiver: str
    value: int


class Outcome(StrEnum):
    # Pays its request: a settlement is made, confirmed by the verifier.
    SETTLE = "SETTLE"
    # Reached the merchant's wallet but cannot settle the request: the subscriber's credit.
    CREDIT = "CREDIT"
    # Not a payment to any merchant of ours.
    IGNORE = "IGNORE"


class CreditReason(StrEnum):
    EXPIRED = "EXPIRED"
    ALREADY_PAID = "ALREADY_PAID"
    SHORT_AMOUNT = "SHORT_AMOUNT"


def _address(topic: str) -> str:
    return str(to_checksum_address("0x" + topic[-40:]))


def used_authorizations(logs: list[dict[str, Any]]) -> list[UsedAuthorization]:
    """Each AuthorizationUsed log paired with the first Transfer after it, in its transaction,
    from the same authorizer; logs in the node's order (block, then log index)."""
    ordered = sorted(logs, key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
    found = []
    for i, log in enumerate(ordered):
        topics = [t.lower() for t in log["topics"]]
        if len(topics) != 3 or topics[0] != AUTHORIZATION_USED_TOPIC:
            continue
        authorizer = _address(topics[1])
        for later in ordered[i + 1 :]:
            if later["transactionHash"] != log["transactionHash"]:
                break
            moved = [t.lower() for t in later["topics"]]
            if len(moved) == 3 and moved[0] == TRANSFER_TOPIC and _address(moved[1]) == authorizer:
                found.append(
                    UsedAuthorization(
                        transaction_hash=log["transactionHash"].lower(),
                        log_index=int(log["logIndex"], 16),
                        block_number=int(log["blockNumber"], 16),
                        block_hash=log["blockHash"].lower(),
                        authorizer=authorizer,
                        nonce=topics[2],
                        receiver=_address(moved[2]),
                        value=int(later["data"], 16),
                    )
                )
                break
    return found


def judge(
    used: UsedAuthorization,
    request: PaymentRequest | None,
    block_time: datetime,
    *,
    already_paid: bool,
) -> tuple[Outcome, CreditReason | None]:
    """A payment settles only the request whose reference it carries, only when it reached that
    request's payee; money that reached the payee but cannot settle is credited, never lost."""
    if request is None or used.receiver != request.payee:
        return Outcome.IGNORE, None
    if request.expired(block_time):
        return Outcome.CREDIT, CreditReason.EXPIRED
    if already_paid:
        return Outcome.CREDIT, CreditReason.ALREADY_PAID
    if used.value < request.amount_base_units:
        return Outcome.CREDIT, CreditReason.SHORT_AMOUNT
    return Outcome.SETTLE, None

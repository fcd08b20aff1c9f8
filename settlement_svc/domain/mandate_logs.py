"""What the mandate contract's logs say: mandates created (or replaced) and revoked, as the
contract emits them, in chain order. Pure.

MandateCreated(payer indexed, merchant indexed, cap, period, start, expiry) and
MandateRevoked(payer indexed, merchant indexed); a payer holds at most one mandate per merchant
wallet, so a MandateCreated for a pair that had one replaces it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from eth_utils.crypto import keccak

from settlement_svc.domain.chain_logs import Log, address_of

MANDATE_CREATED_TOPIC = (
    "0x" + keccak(text="MandateCreated(address,address,uint256,uint256,uint256,uint256)").hex()
)
MANDATE_REVOKED_TOPIC = "0x" + keccak(text="MandateRevoked(address,address)").hex()
WORD = 64  # hex digits of one 32-byte ABI word


class MandateChange(StrEnum):
    CREATED = "CREATED"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class MandateEvent:
    change: MandateChange
    payer: str
    merchant: str
    transaction_hash: str
    # Of a creation: the terms, in base units and seconds (0 for a revocation).
    cap: int = 0
    period: int = 0
    expiry: int = 0


def mandate_events(logs: Sequence[Log]) -> list[MandateEvent]:
    """The creations and revocations among `logs`, in chain order; logs a reorg removed and any
    other log are left out."""
    live = [log for log in logs if not log.get("removed")]
    ordered = sorted(live, key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
    found = []
    for log in ordered:
        topics = [topic.lower() for topic in log["topics"]]
        if len(topics) != 3:
            continue
        data = log["data"].removeprefix("0x")
        pair = address_of(topics[1]), address_of(topics[2])
        transaction = log["transactionHash"].lower()
        if topics[0] == MANDATE_CREATED_TOPIC and len(data) == 4 * WORD:
            cap, period, _start, expiry = (
                int(data[i : i + WORD], 16) for i in range(0, 4 * WORD, WORD)
            )
            found.append(
                MandateEvent(MandateChange.CREATED, *pair, transaction, cap, period, expiry)
            )
        elif topics[0] == MANDATE_REVOKED_TOPIC and not data:
            found.append(MandateEvent(MandateChange.REVOKED, *pair, transaction))
    return found

"""Many items as batch calls to another service: a call names one merchant (in its metadata)
and carries no more items than the callee's batch RPCs accept."""

from collections.abc import Sequence
from typing import Protocol, TypeVar

# Metering's and settlement's limit of items per batch call.
BATCH_LIMIT = 1000


class _OfMerchant(Protocol):
    @property
    def merchant_id(self) -> str: ...


Item = TypeVar("Item", bound=_OfMerchant)


def per_call(items: Sequence[Item]) -> list[tuple[str, list[Item]]]:
    """(merchant, up to BATCH_LIMIT of its items), in the order of the items."""
    by_merchant: dict[str, list[Item]] = {}
    for item in items:
        by_merchant.setdefault(item.merchant_id, []).append(item)
    return [
        (merchant_id, found[i : i + BATCH_LIMIT])
        for merchant_id, found in by_merchant.items()
        for i in range(0, len(found), BATCH_LIMIT)
    ]

"""Deduplication of usage events by (subscription, idempotency key): the first event recorded
with a key is the event, every later one with that key a DUPLICATE answered with its id.

Within a batch the first event with a key wins; across batches the one stored first does, which
the event store finds by claiming each key in the database. An event without a key is never a
duplicate.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from metering_svc.domain.model import EventOutcome, EventResult, UsageEvent

# (subscription_id, idempotency_key)
EventKey = tuple[str, str]


@dataclass(frozen=True)
class UniqueBatch:
    """A batch's events (each with its index in the request) split by their key."""

    # To store: the first event of each key in the batch, and every event without a key.
    fresh: list[tuple[int, UsageEvent]]
    # The batch's later events with a key an earlier one of the batch holds.
    repeats: list[tuple[int, EventKey]]
    first_with_key: dict[EventKey, UsageEvent]


def unique_in_batch(events: Sequence[tuple[int, UsageEvent]]) -> UniqueBatch:
    """The batch with its repeated keys set aside: the first event with a key wins."""
    first_with_key: dict[EventKey, UsageEvent] = {}
    repeats: list[tuple[int, EventKey]] = []
    fresh: list[tuple[int, UsageEvent]] = []
    for index, event in events:
        if event.idempotency_key:
            key = (event.subscription_id, event.idempotency_key)
            if key in first_with_key:
                repeats.append((index, key))
                continue
            first_with_key[key] = event
        fresh.append((index, event))
    return UniqueBatch(fresh, repeats, first_with_key)


def outcomes(batch: UniqueBatch, recorded_before: Mapping[EventKey, str]) -> list[EventResult]:
    """Each event's result once its batch's fresh events were stored; `recorded_before` maps
    each key an earlier event held to that event's id. A fresh event is ACCEPTED unless its key
    was recorded before; a repeat is a DUPLICATE of the event first recorded with its key."""
    results: list[EventResult] = []
    for index, event in batch.fresh:
        earlier = recorded_before.get((event.subscription_id, event.idempotency_key))
        if earlier is None:
            results.append(EventResult(index, EventOutcome.ACCEPTED, event_id=event.id))
        else:
            results.append(EventResult(index, EventOutcome.DUPLICATE, event_id=earlier))
    for index, key in batch.repeats:
        first_id = recorded_before.get(key, batch.first_with_key[key].id)
        results.append(EventResult(index, EventOutcome.DUPLICATE, event_id=first_id))
    return results

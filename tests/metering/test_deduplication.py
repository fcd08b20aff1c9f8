"""The deduplication rule on its own: the first event with a key wins within a batch, the event
recorded first across batches."""

from datetime import UTC, datetime
from decimal import Decimal

from metering_svc.domain.deduplication import outcomes, unique_in_batch
from metering_svc.domain.model import EventOutcome, EventResult, UsageEvent

MOMENT = datetime(2025, 1, 1, tzinfo=UTC)


def _event(event_id: str, subscription_id: str, key: str) -> UsageEvent:
    return UsageEvent(
        event_id, "m", "svc", subscription_id, "u", "tokens", Decimal(1), MOMENT, "", key, {}
    )


def test_first_event_with_a_key_wins_within_the_batch_and_across_batches() -> None:
    events = [
        (0, _event("e0", "sub_a", "k1")),
        (1, _event("e1", "sub_a", "k1")),
        (2, _event("e2", "sub_b", "k1")),
        (3, _event("e3", "sub_a", "")),
        (4, _event("e4", "sub_a", "")),
        (5, _event("e5", "sub_b", "k1")),
        (6, _event("e6", "sub_a", "k2")),
    ]
    batch = unique_in_batch(events)
    assert [index for index, _ in batch.fresh] == [0, 2, 3, 4, 6]
    assert batch.repeats == [(1, ("sub_a", "k1")), (5, ("sub_b", "k1"))]

    # sub_b's k1 was recorded by an earlier batch.
    results = sorted(outcomes(batch, {("sub_b", "k1"): "e_earlier"}), key=lambda r: r.index)
    assert results == [
        EventResult(0, EventOutcome.ACCEPTED, event_id="e0"),
        EventResult(1, EventOutcome.DUPLICATE, event_id="e0"),
        EventResult(2, EventOutcome.DUPLICATE, event_id="e_earlier"),
        EventResult(3, EventOutcome.ACCEPTED, event_id="e3"),
        EventResult(4, EventOutcome.ACCEPTED, event_id="e4"),
        EventResult(5, EventOutcome.DUPLICATE, event_id="e_earlier"),
        EventResult(6, EventOutcome.ACCEPTED, event_id="e6"),
    ]

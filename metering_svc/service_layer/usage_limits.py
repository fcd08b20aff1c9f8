"""Hard usage limits at ingestion: an event that would take its key's aggregate for the billing
period past the plan's hard limit is rejected, exactly, however many transactions (and metering
replicas) ingest for the subscription at once.

The subscriptions with a hard limit on a key of the batch are locked (an advisory lock each, in
one order, after the share locks every ingestion takes), so their ingestions follow one another:
each reads the period's usage, including every event committed before it, and admits events one
by one while they fit. A retry of an event already recorded (its idempotency key) is answered
as the DUPLICATE it is, never counted again nor refused.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from metering_svc.domain.aggregation import PartialAggregate, UsageWindow, plan_window
from metering_svc.domain.entitlements import (
    enforced,
    limit_exceeded,
    passes,
    period_of,
    usage_after,
)
from metering_svc.domain.model import (
    Aggregation,
    EventOutcome,
    EventResult,
    SubscriptionState,
    UsageEvent,
)
from metering_svc.service_layer.unit_of_work import MeteringUnitOfWork

# (subscription, event key, period start)
_Window = tuple[str, str, datetime]


async def within_hard_limits(
    uow: MeteringUnitOfWork,
    merchant_id: str,
    subscriptions: Mapping[str, SubscriptionState],
    events: Sequence[tuple[int, UsageEvent]],
    results: dict[int, EventResult],
) -> list[tuple[int, UsageEvent]]:
    """The events (with their index in the request) that fit their hard limits; each that does
    not gets its REJECTED result in `results`."""
    if not any(limit.hard for state in subscriptions.values() for limit in state.limits):
        return list(events)
    limited = [
        (index, event)
        for index, event in events
        if (limit := subscriptions[event.subscription_id].limit_of(event.event_key)) and limit.hard
    ]
    if not limited:
        return list(events)
    services = {subscriptions[event.subscription_id].service_id for _, event in limited}
    aggregations = {
        (meter.service_id, meter.event_key): meter.aggregation
        for service_id in sorted(services)
        for meter in await uow.meters.for_service(merchant_id, service_id)
    }

    def aggregation_of(event: UsageEvent) -> Aggregation:
        return aggregations.get((event.service_id, event.event_key), Aggregation.SUM)

    checked = [
        (index, event)
        for index, event in limited
        if enforced(
            subscriptions[event.subscription_id].limit_of(event.event_key), aggregation_of(event)
        )
    ]
    if not checked:
        return list(events)
    await uow.replicas.lock_usage_limits({event.subscription_id for _, event in checked})
    recorded = await uow.events.recorded_keys(
        {(e.subscription_id, e.idempotency_key) for _, e in checked if e.idempotency_key}
    )
    windows: dict[_Window, UsageWindow] = {}
    for _, event in checked:
        period = period_of(subscriptions[event.subscription_id], event.occurred_at)
        windows[(event.subscription_id, event.event_key, period.start)] = UsageWindow(
            event.subscription_id, event.event_key, plan_window(period.start, period.window_end)
        )
    aggregates = await uow.usage.aggregates(list(windows.values()))
    used: dict[_Window, Decimal] = {
        window: found.get(window[1], PartialAggregate()).value(
            aggregations.get((subscriptions[window[0]].service_id, window[1]), Aggregation.SUM)
        )
        for window, found in zip(windows, aggregates, strict=True)
    }
    admitted_keys: set[tuple[str, str]] = set()
    refused: set[int] = set()
    for index, event in checked:
        key = (event.subscription_id, event.idempotency_key)
        if event.idempotency_key and (key in recorded or key in admitted_keys):
            continue  # a duplicate of an event that counts already
        state = subscriptions[event.subscription_id]
        limit = state.limit_of(event.event_key)
        assert limit is not None
        window = (event.subscription_id, event.event_key, period_of(state, event.occurred_at).start)
        aggregation = aggregation_of(event)
        amount = Decimal(1) if aggregation is Aggregation.COUNT else event.quantity
        after = usage_after(aggregation, used[window], amount)
        if passes(limit, used[window], after):
            error = limit_exceeded(limit, used[window], after)
            results[index] = EventResult(index, EventOutcome.REJECTED, error=error)
            refused.add(index)
            continue
        used[window] = after
        if event.idempotency_key:
            admitted_keys.add(key)
    return [(index, event) for index, event in events if index not in refused]

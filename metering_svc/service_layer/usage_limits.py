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
from metering_svc.domain.entitlements import limit_exceeded, passes, period_of, usage_after
from metering_svc.domain.model import (
    Aggregation,
    EventOutcome,
    EventResult,
    Meter,
    SubscriptionState,
    UsageEvent,
)
from metering_svc.service_layer.unit_of_work import MeteringUnitOfWork

# (subscription, event key, period start)
_Window = tuple[str, str, datetime]
# (service, event key)
_MeterKey = tuple[str, str]


class _PeriodUsage:
    """What the limited events' periods have used of their keys so far, as events are admitted;
    for a UNIQUE_COUNT meter also which of the batch's values its period holds already."""

    def __init__(
        self, subscriptions: Mapping[str, SubscriptionState], meters: Mapping[_MeterKey, Meter]
    ) -> None:
        self._subscriptions = subscriptions
        self._meters = meters
        self.used: dict[_Window, Decimal] = {}
        self._values: dict[_Window, set[str]] = {}

    def _meter_of(self, event: UsageEvent) -> Meter | None:
        return self._meters.get((event.service_id, event.event_key))

    def aggregation_of(self, event: UsageEvent) -> Aggregation:
        meter = self._meter_of(event)
        return meter.aggregation if meter else Aggregation.SUM

    def window_of(self, event: UsageEvent) -> _Window:
        state = self._subscriptions[event.subscription_id]
        return event.subscription_id, event.event_key, period_of(state, event.occurred_at).start

    def _value_of(self, event: UsageEvent) -> str | None:
        meter = self._meter_of(event)
        return event.properties.get(meter.unique_property) if meter else None

    async def read(self, uow: MeteringUnitOfWork, events: Sequence[UsageEvent]) -> None:
        """The usage of every event's period, read after the limits' locks were taken."""
        # Each window with one of its events: the event names the window's meter.
        planned: dict[_Window, tuple[UsageWindow, UsageEvent]] = {}
        for event in events:
            period = period_of(self._subscriptions[event.subscription_id], event.occurred_at)
            window = UsageWindow(
                event.subscription_id, event.event_key, plan_window(period.start, period.window_end)
            )
            planned[self.window_of(event)] = (window, event)
        aggregates = await uow.usage.aggregates([window for window, _ in planned.values()])
        for (key, (_, event)), found in zip(planned.items(), aggregates, strict=True):
            aggregate = found.get(event.event_key, PartialAggregate())
            self.used[key] = aggregate.value(self.aggregation_of(event))
        unique = {
            key: (window, meter.unique_property)
            for key, (window, event) in planned.items()
            if (meter := self._meter_of(event)) and meter.aggregation is Aggregation.UNIQUE_COUNT
        }
        windows = [window for window, _ in unique.values()]
        properties = [prop for _, prop in unique.values()]
        values = {value for event in events if (value := self._value_of(event)) is not None}
        counts = await uow.usage.unique_counts(windows, properties)
        seen = await uow.usage.seen_values(windows, properties, values)
        for key, count, held in zip(unique, counts, seen, strict=True):
            self.used[key], self._values[key] = Decimal(count), held

    def amount(self, event: UsageEvent) -> Decimal:
        """What the event adds to its key's aggregate (MAX and LAST: what it may become)."""
        aggregation = self.aggregation_of(event)
        if aggregation is Aggregation.COUNT:
            return Decimal(1)
        if aggregation is Aggregation.UNIQUE_COUNT:
            value = self._value_of(event)
            known = self._values[self.window_of(event)]
            return Decimal(0) if value is None or value in known else Decimal(1)
        return event.quantity

    def admit(self, event: UsageEvent, after: Decimal) -> None:
        window = self.window_of(event)
        self.used[window] = after
        if (value := self._value_of(event)) is not None and window in self._values:
            self._values[window].add(value)


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
    meters = {
        (meter.service_id, meter.event_key): meter
        for service_id in sorted(services)
        for meter in await uow.meters.for_service(merchant_id, service_id)
    }
    await uow.replicas.lock_usage_limits({event.subscription_id for _, event in limited})
    recorded = await uow.events.recorded_keys(
        {(e.subscription_id, e.idempotency_key) for _, e in limited if e.idempotency_key}
    )
    usage = _PeriodUsage(subscriptions, meters)
    await usage.read(uow, [event for _, event in limited])
    admitted_keys: set[tuple[str, str]] = set()
    refused: set[int] = set()
    for index, event in limited:
        key = (event.subscription_id, event.idempotency_key)
        if event.idempotency_key and (key in recorded or key in admitted_keys):
            continue  # a duplicate of an event that counts already
        limit = subscriptions[event.subscription_id].limit_of(event.event_key)
        assert limit is not None
        used = usage.used[usage.window_of(event)]
        after = usage_after(usage.aggregation_of(event), used, usage.amount(event))
        if passes(limit, used, after):
            error = limit_exceeded(limit, used, after)
            results[index] = EventResult(index, EventOutcome.REJECTED, error=error)
            refused.add(index)
            continue
        usage.admit(event, after)
        if event.idempotency_key:
            admitted_keys.add(key)
    return [(index, event) for index, event in events if index not in refused]

"""Hard usage limits and prepaid credits at ingestion, exactly, however many transactions (and
metering replicas) ingest for the subscription at once:

- an event that would take its key's aggregate for the billing period past the plan's hard
  limit is rejected;
- an event of a prepaid-only subscription that would take the cost of its usage (from its
  allowance's `since` on, each period priced on its own with the plan's charges, as its invoice
  prices it) past the subscriber's credits is rejected.

The subscriptions judged (a hard limit on a key of the batch, or prepaid-only) are locked (an
advisory lock each, in one order, after the share locks every ingestion takes), so their
ingestions follow one another: each reads its periods' usage, including every event committed
before it, and admits events one by one while they fit. A retry of an event already recorded
(its idempotency key) is answered as the DUPLICATE it is, never counted again nor refused.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from metering_svc.domain.aggregation import PartialAggregate, UsageWindow, plan_window
from metering_svc.domain.entitlements import (
    BillingPeriod,
    credits_exceeded,
    limit_exceeded,
    passes,
    period_of,
    unbilled_periods,
    usage_after,
)
from metering_svc.domain.model import (
    Aggregation,
    EventOutcome,
    EventResult,
    Meter,
    SubscriptionState,
    UsageEvent,
)
from metering_svc.service_layer.unit_of_work import MeteringUnitOfWork
from pricing.charges import usage_cost
from service_kit.errors import FailedPrecondition

# (subscription, period start)
_Period = tuple[str, datetime]
# (subscription, event key, period start)
_Window = tuple[str, str, datetime]
# (service, event key)
_MeterKey = tuple[str, str]
ZERO = Decimal(0)


class _PeriodUsage:
    """What the judged subscriptions' periods have used of each key so far, as events are
    admitted; for a UNIQUE_COUNT meter also which of the batch's values a period holds already;
    and what each period of a prepaid-only subscription costs."""

    def __init__(
        self, subscriptions: Mapping[str, SubscriptionState], meters: Mapping[_MeterKey, Meter]
    ) -> None:
        self._subscriptions = subscriptions
        self._meters = meters
        self._used: dict[_Window, Decimal] = {}
        self._values: dict[_Window, set[str]] = {}
        self._keys: dict[_Period, set[str]] = defaultdict(set)
        self._costs: dict[_Period, Decimal] = {}

    def _meter(self, subscription_id: str, event_key: str) -> Meter | None:
        service_id = self._subscriptions[subscription_id].service_id
        return self._meters.get((service_id, event_key))

    def aggregation_of(self, event: UsageEvent) -> Aggregation:
        meter = self._meter(event.subscription_id, event.event_key)
        return meter.aggregation if meter else Aggregation.SUM

    def period_of(self, event: UsageEvent) -> _Period:
        state = self._subscriptions[event.subscription_id]
        return event.subscription_id, period_of(state, event.occurred_at).start

    def used(self, event: UsageEvent) -> Decimal:
        subscription_id, start = self.period_of(event)
        return self._used.get((subscription_id, event.event_key, start), ZERO)

    def _value_of(self, event: UsageEvent) -> str | None:
        meter = self._meter(event.subscription_id, event.event_key)
        return event.properties.get(meter.unique_property) if meter else None

    async def read(
        self,
        uow: MeteringUnitOfWork,
        periods: Mapping[_Period, BillingPeriod],
        events: Sequence[UsageEvent],
    ) -> None:
        """The usage of every key in each period, read after the locks were taken."""
        windows = {
            key: UsageWindow(key[0], "", plan_window(period.start, period.window_end))
            for key, period in periods.items()
        }
        found_each = await uow.usage.aggregates(list(windows.values()))
        for period, found in zip(windows, found_each, strict=True):
            for event_key, aggregate in found.items():
                self._set(period, event_key, aggregate)
        # UNIQUE_COUNT keys: the distinct values of the period, and which of the batch's it has.
        unique: dict[_Window, tuple[UsageWindow, str]] = {}
        for event in events:
            period = self.period_of(event)
            meter = self._meter(event.subscription_id, event.event_key)
            if meter and meter.aggregation is Aggregation.UNIQUE_COUNT:
                self._keys[period].add(event.event_key)
        for (subscription_id, start), period_keys in self._keys.items():
            plan = windows[(subscription_id, start)].plan
            for event_key in period_keys:
                meter = self._meter(subscription_id, event_key)
                if meter and meter.aggregation is Aggregation.UNIQUE_COUNT:
                    window = UsageWindow(subscription_id, event_key, plan)
                    unique[(subscription_id, event_key, start)] = (window, meter.unique_property)
        found_windows = [window for window, _ in unique.values()]
        properties = [prop for _, prop in unique.values()]
        values = {value for event in events if (value := self._value_of(event)) is not None}
        counts = await uow.usage.unique_counts(found_windows, properties)
        seen = await uow.usage.seen_values(found_windows, properties, values)
        for key, count, held in zip(unique, counts, seen, strict=True):
            self._used[key], self._values[key] = Decimal(count), held

    def _set(self, period: _Period, event_key: str, aggregate: PartialAggregate) -> None:
        subscription_id, start = period
        meter = self._meter(subscription_id, event_key)
        aggregation = meter.aggregation if meter else Aggregation.SUM
        self._used[(subscription_id, event_key, start)] = aggregate.value(aggregation)
        self._keys[period].add(event_key)

    def amount(self, event: UsageEvent) -> Decimal:
        """What the event adds to its key's aggregate (MAX and LAST: what it may become)."""
        aggregation = self.aggregation_of(event)
        if aggregation is Aggregation.COUNT:
            return Decimal(1)
        if aggregation is Aggregation.UNIQUE_COUNT:
            value = self._value_of(event)
            subscription_id, start = self.period_of(event)
            known = self._values[(subscription_id, event.event_key, start)]
            return ZERO if value is None or value in known else Decimal(1)
        return event.quantity

    def period_cost(self, period: _Period, change: tuple[str, Decimal] | None = None) -> Decimal:
        """What a prepaid-only subscription's period costs, with `change` (key, aggregate)."""
        if change is None and period in self._costs:
            return self._costs[period]
        subscription_id, start = period
        usage = {key: self._used[(subscription_id, key, start)] for key in self._keys[period]}
        if change is not None:
            usage[change[0]] = change[1]
        allowance = self._subscriptions[subscription_id].prepaid
        assert allowance is not None
        cost = usage_cost(allowance.charges, usage)
        if change is None:
            self._costs[period] = cost
        return cost

    def admit(self, event: UsageEvent, after: Decimal) -> None:
        period = self.period_of(event)
        window = (event.subscription_id, event.event_key, period[1])
        self._used[window] = after
        self._keys[period].add(event.event_key)
        self._costs.pop(period, None)
        if (value := self._value_of(event)) is not None and window in self._values:
            self._values[window].add(value)


def _judged(
    subscriptions: Mapping[str, SubscriptionState], events: Sequence[tuple[int, UsageEvent]]
) -> list[tuple[int, UsageEvent]]:
    """The events a hard limit or prepaid credits may refuse."""
    judged = []
    for index, event in events:
        state = subscriptions[event.subscription_id]
        limit = state.limit_of(event.event_key)
        if state.prepaid is not None or (limit is not None and limit.hard):
            judged.append((index, event))
    return judged


def _periods(
    subscriptions: Mapping[str, SubscriptionState], events: Sequence[UsageEvent]
) -> dict[_Period, BillingPeriod]:
    """Each judged event's period, and every period a prepaid-only subscription pays for."""
    periods: dict[_Period, BillingPeriod] = {}
    for event in events:
        state = subscriptions[event.subscription_id]
        for period in unbilled_periods(state) if state.prepaid else ():
            periods[(state.subscription_id, period.start)] = period
        period = period_of(state, event.occurred_at)
        periods[(state.subscription_id, period.start)] = period
    return periods


def _refusal(
    usage: _PeriodUsage, state: SubscriptionState, event: UsageEvent
) -> tuple[FailedPrecondition | None, Decimal]:
    """Why the event does not fit (None when it does), and its key's aggregate once admitted."""
    used = usage.used(event)
    after = usage_after(usage.aggregation_of(event), used, usage.amount(event))
    limit = state.limit_of(event.event_key)
    if limit is not None and limit.hard and passes(limit, used, after):
        return limit_exceeded(limit, used, after), after
    if state.prepaid is not None:
        period = usage.period_of(event)
        others = sum(
            (
                usage.period_cost((state.subscription_id, p.start))
                for p in unbilled_periods(state)
                if p.start != period[1]
            ),
            ZERO,
        )
        before = others + usage.period_cost(period)
        cost = others + usage.period_cost(period, (event.event_key, after))
        if cost > state.prepaid.credits and cost > before:
            return credits_exceeded(state.prepaid, before, cost), after
    return None, after


async def within_limits_and_credits(
    uow: MeteringUnitOfWork,
    merchant_id: str,
    subscriptions: Mapping[str, SubscriptionState],
    events: Sequence[tuple[int, UsageEvent]],
    results: dict[int, EventResult],
) -> list[tuple[int, UsageEvent]]:
    """The events (with their index in the request) that fit their hard limits and prepaid
    credits; each that does not gets its REJECTED result in `results`."""
    judged = _judged(subscriptions, events)
    if not judged:
        return list(events)
    services = {subscriptions[event.subscription_id].service_id for _, event in judged}
    meters = {
        (meter.service_id, meter.event_key): meter
        for service_id in sorted(services)
        for meter in await uow.meters.for_service(merchant_id, service_id)
    }
    await uow.replicas.lock_usage_limits({event.subscription_id for _, event in judged})
    recorded = await uow.events.recorded_keys(
        {(e.subscription_id, e.idempotency_key) for _, e in judged if e.idempotency_key}
    )
    usage = _PeriodUsage(subscriptions, meters)
    batch = [event for _, event in judged]
    await usage.read(uow, _periods(subscriptions, batch), batch)
    admitted_keys: set[tuple[str, str]] = set()
    refused: set[int] = set()
    for index, event in judged:
        key = (event.subscription_id, event.idempotency_key)
        if event.idempotency_key and (key in recorded or key in admitted_keys):
            continue  # a duplicate of an event that counts already
        error, after = _refusal(usage, subscriptions[event.subscription_id], event)
        if error is not None:
            results[index] = EventResult(index, EventOutcome.REJECTED, error=error)
            refused.add(index)
            continue
        usage.admit(event, after)
        if event.idempotency_key:
            admitted_keys.add(key)
    return [(index, event) for index, event in events if index not in refused]

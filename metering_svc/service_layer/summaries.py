"""Usage summaries: the aggregate per meter of a subscription over a window, one or many at a
time (a period close asks for a thousand subscriptions at once)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from metering_svc.domain.aggregation import PartialAggregate, UsageWindow, plan_window
from metering_svc.domain.model import Aggregation, Meter
from metering_svc.service_layer.unit_of_work import Metering, MeteringUnitOfWork
from service_kit.errors import InvalidArgument, NotFound
from service_kit.identifiers import require_identifier

MAX_QUERIES_PER_CALL = 1000


@dataclass(frozen=True)
class SummaryQuery:
    """What a summary is asked for: one event key (or every key, when empty) of a subscription
    over [start, end)."""

    subscription_id: str
    event_key: str
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class UsageSummary:
    event_key: str
    meter: Meter | None
    aggregation: Aggregation
    value: Decimal
    aggregate: PartialAggregate


def _window(query: SummaryQuery, prefix: str) -> UsageWindow:
    """The query's window, planned; `prefix` names the query in error fields."""
    require_identifier(query.subscription_id, f"{prefix}subscription_id")
    if query.event_key:
        require_identifier(query.event_key, f"{prefix}event_key")
    if query.start is None:
        raise InvalidArgument("start_time is required", field=f"{prefix}start_time")
    if query.end is None:
        raise InvalidArgument("end_time is required", field=f"{prefix}end_time")
    if query.end <= query.start:
        raise InvalidArgument("end_time must be after start_time", field=f"{prefix}end_time")
    return UsageWindow(query.subscription_id, query.event_key, plan_window(query.start, query.end))


async def _meters_by_service(
    uow: MeteringUnitOfWork, merchant_id: str, service_ids: set[str]
) -> dict[str, dict[str, Meter]]:
    return {
        service_id: {m.event_key: m for m in await uow.meters.for_service(merchant_id, service_id)}
        for service_id in sorted(service_ids)
    }


async def _summaries(
    metering: Metering, merchant_id: str, queries: Sequence[SummaryQuery], prefixes: Sequence[str]
) -> list[list[UsageSummary]]:
    """Every query's summaries, read in one transaction with one statement for all windows."""
    windows = [_window(query, prefix) for query, prefix in zip(queries, prefixes, strict=True)]
    async with metering.unit_of_work() as uow:
        states = await uow.replicas.subscriptions(merchant_id, {q.subscription_id for q in queries})
        for query, prefix in zip(queries, prefixes, strict=True):
            if query.subscription_id not in states:
                raise NotFound(
                    f"subscription {query.subscription_id} not found",
                    field=f"{prefix}subscription_id",
                )
        meters = await _meters_by_service(
            uow, merchant_id, {state.service_id for state in states.values()}
        )
        aggregates = await uow.usage.aggregates(windows)
        keys = [
            [query.event_key]
            if query.event_key
            else sorted(set(meters[states[query.subscription_id].service_id]) | set(found))
            for query, found in zip(queries, aggregates, strict=True)
        ]
        # (window, key) of every UNIQUE_COUNT meter asked for; their counts in one statement.
        unique_keys = [
            (index, key, meter)
            for index, query in enumerate(queries)
            for key in keys[index]
            if (meter := meters[states[query.subscription_id].service_id].get(key))
            and meter.aggregation is Aggregation.UNIQUE_COUNT
        ]
        counts = await uow.usage.unique_counts(
            [
                UsageWindow(windows[i].subscription_id, key, windows[i].plan)
                for i, key, _ in unique_keys
            ],
            [meter.unique_property for _, _, meter in unique_keys],
        )
    unique = {
        (index, key): count for (index, key, _), count in zip(unique_keys, counts, strict=True)
    }
    result = []
    for index, query in enumerate(queries):
        service_meters = meters[states[query.subscription_id].service_id]
        summaries = []
        for key in keys[index]:
            meter = service_meters.get(key)
            aggregation = meter.aggregation if meter else Aggregation.SUM
            aggregate = aggregates[index].get(key, PartialAggregate())
            value = aggregate.value(aggregation, unique.get((index, key), 0))
            summaries.append(UsageSummary(key, meter, aggregation, value, aggregate))
        result.append(summaries)
    return result


async def usage_summary(
    metering: Metering, merchant_id: str, query: SummaryQuery
) -> list[UsageSummary]:
    """One summary per requested key: the given one, or every meter of the subscription's service
    plus every key with usage in the window. A key without a meter aggregates as SUM."""
    (summaries,) = await _summaries(metering, merchant_id, [query], [""])
    return summaries


async def usage_summaries(
    metering: Metering, merchant_id: str, queries: Sequence[SummaryQuery]
) -> list[list[UsageSummary]]:
    """The summaries of each query, in order, as `usage_summary` gives them; all or nothing."""
    if not 1 <= len(queries) <= MAX_QUERIES_PER_CALL:
        raise InvalidArgument(
            f"between 1 and {MAX_QUERIES_PER_CALL:,} requests are required", field="requests"
        )
    prefixes = [f"requests[{index}]." for index in range(len(queries))]
    return await _summaries(metering, merchant_id, queries, prefixes)

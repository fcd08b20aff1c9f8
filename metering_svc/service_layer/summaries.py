"""Usage summaries: the aggregate per meter of a subscription over a window."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from metering_svc.domain.aggregation import PartialAggregate, plan_window
from metering_svc.domain.model import Aggregation, Meter
from metering_svc.domain.validation import require_identifier
from metering_svc.service_layer.unit_of_work import Metering
from service_kit.errors import InvalidArgument, NotFound


@dataclass(frozen=True)
class UsageSummary:
    event_key: str
    meter: Meter | None
    aggregation: Aggregation
    value: Decimal
    aggregate: PartialAggregate


async def usage_summary(
    metering: Metering,
    merchant_id: str,
    subscription_id: str,
    event_key: str,
    start: datetime | None,
    end: datetime | None,
) -> list[UsageSummary]:
    """One summary per requested key: the given one, or every meter of the subscription's service
    plus every key with usage in the window. A key without a meter aggregates as SUM."""
    require_identifier(subscription_id, "subscription_id")
    if event_key:
        require_identifier(event_key, "event_key")
    if start is None:
        raise InvalidArgument("start_time is required", field="start_time")
    if end is None:
        raise InvalidArgument("end_time is required", field="end_time")
    if end <= start:
        raise InvalidArgument("end_time must be after start_time", field="end_time")
    plan = plan_window(start, end)
    async with metering.unit_of_work() as uow:
        subscription = await uow.replicas.subscription(merchant_id, subscription_id)
        if subscription is None:
            raise NotFound(f"subscription {subscription_id} not found", field="subscription_id")
        meters = {
            m.event_key: m
            for m in await uow.meters.for_service(merchant_id, subscription.service_id)
        }
        if event_key:
            keys = [event_key]
        else:
            keys = sorted(set(meters) | set(await uow.usage.keys_with_usage(subscription_id, plan)))
        aggregates = await uow.usage.aggregates(subscription_id, keys, plan)
        summaries = []
        for key in keys:
            meter = meters.get(key)
            aggregation = meter.aggregation if meter else Aggregation.SUM
            aggregate = aggregates.get(key, PartialAggregate())
            unique = 0
            if meter and aggregation is Aggregation.UNIQUE_COUNT:
                unique = await uow.usage.unique_count(
                    subscription_id, key, meter.unique_property, plan
                )
            summaries.append(
                UsageSummary(
                    key, meter, aggregation, aggregate.value(aggregation, unique), aggregate
                )
            )
    return summaries

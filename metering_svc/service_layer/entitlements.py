"""CheckEntitlement: whether a subscription may use a feature, or more of an event key, answered
from the replica and the rollups, with no call to another service.

Answers come through a cache (METERING_ENTITLEMENT_CACHE_SECONDS): what ingestion, a
cancellation or a replica write of this process changes is dropped from it at once, what other
replicas record is seen once the cached answer ages out. A hard limit does not rely on it:
ingestion enforces it exactly (usage_limits.py).
"""

from decimal import Decimal

from metering_svc.domain.entitlements import (
    Entitlement,
    UsageSnapshot,
    check_feature,
    check_usage,
    period_of,
    unbilled_periods,
)
from metering_svc.domain.model import Aggregation
from metering_svc.domain.validation import parse_quantity
from metering_svc.service_layer.summaries import SummaryQuery, usage_summary
from metering_svc.service_layer.unit_of_work import Metering
from service_kit.errors import InvalidArgument, NotFound
from service_kit.identifiers import require_identifier


def _not_found(subscription_id: str) -> NotFound:
    return NotFound(f"subscription {subscription_id} not found", field="subscription_id")


async def _snapshot(
    metering: Metering, merchant_id: str, subscription_id: str, event_key: str
) -> UsageSnapshot:
    async with metering.unit_of_work() as uow:
        state = await uow.replicas.subscription(merchant_id, subscription_id)
    if state is None:
        # Raised, so not cached: a replica written by another process is found at once.
        raise _not_found(subscription_id)
    period = period_of(state, state.now(metering.clock.now()))
    if not event_key:
        return UsageSnapshot(state, Aggregation.SUM, Decimal(0), period)
    query = SummaryQuery(subscription_id, event_key, period.start, period.window_end)
    (summary,) = await usage_summary(metering, merchant_id, query)
    prepaid_usage = []
    for paid in unbilled_periods(state) if state.prepaid else ():
        every_key = SummaryQuery(subscription_id, "", paid.start, paid.window_end)
        found = await usage_summary(metering, merchant_id, every_key)
        prepaid_usage.append((paid.start, {s.event_key: s.value for s in found}))
    return UsageSnapshot(state, summary.aggregation, summary.value, period, tuple(prepaid_usage))


async def check_entitlement(
    metering: Metering,
    merchant_id: str,
    subscription_id: str,
    *,
    feature: str,
    event_key: str,
    quantity: str,
) -> Entitlement:
    """One feature, or `quantity` (default 1) more of one event key."""
    require_identifier(subscription_id, "subscription_id")
    if bool(feature) == bool(event_key):
        raise InvalidArgument("give exactly one of feature and event_key", field="event_key")
    if feature:
        require_identifier(feature, "feature")
        if quantity:
            raise InvalidArgument("quantity goes with event_key, not feature", field="quantity")
    else:
        require_identifier(event_key, "event_key")
    amount = parse_quantity(quantity or "1", "quantity")

    async def load() -> UsageSnapshot:
        return await _snapshot(metering, merchant_id, subscription_id, event_key)

    snapshot = await metering.entitlements.get((subscription_id, event_key), load)
    # A cached answer may have been read for another merchant: it is never theirs to see.
    if snapshot.state.merchant_id != merchant_id:
        raise _not_found(subscription_id)
    state = snapshot.state
    if feature:
        return check_feature(state, feature, metering.clock.now())
    return check_usage(snapshot, event_key, amount)

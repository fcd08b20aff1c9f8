"""The usage of subscriptions' current periods, read from metering part by part (a change of
plan splits a period) and paired with the plans that price each part."""

from collections.abc import Mapping, Sequence
from datetime import datetime

from invoicing_svc.adapters.metering_client import MeteringClient
from invoicing_svc.domain.invoice_lines import PartUsage
from invoicing_svc.domain.model import Plan, Subscription
from invoicing_svc.domain.periods import BilledUsage, usage_windows
from invoicing_svc.domain.plan_changes import period_parts


async def parts_usage(
    metering: MeteringClient,
    periods: Sequence[tuple[Subscription, datetime | None]],
    plans: Mapping[str, Plan],
) -> list[list[PartUsage]]:
    """Per (subscription, end of its last part's usage), in order, the parts of its current
    period with their usage; `plans` holds every plan involved (`plans_involved`), by id. One
    metering call (per merchant and 1,000 windows) for all of them."""
    windows: list[list[BilledUsage]] = [usage_windows(s, end) for s, end in periods]
    usages = iter(await metering.period_usages([w for ws in windows for w in ws]))
    return [
        [
            PartUsage(plans[p.plan_id], plans[p.fee_plan_id], p.start, p.end, next(usages))
            for p in period_parts(subscription)
        ]
        for subscription, _ in periods
    ]

"""Billing period boundaries, counted from the subscription's anchor."""

import calendar
from datetime import datetime, timedelta

from invoicing_svc.domain.model import BillingInterval


def _add_months(anchor: datetime, months: int) -> datetime:
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_start(anchor: datetime, interval: BillingInterval, count: int, index: int) -> datetime:
    """Start of period `index` (0 = the first) of a subscription anchored at `anchor`."""
    steps = count * index
    match interval:
        case BillingInterval.DAY:
            return anchor + timedelta(days=steps)
        case BillingInterval.WEEK:
            return anchor + timedelta(weeks=steps)
        case BillingInterval.MONTH:
            return _add_months(anchor, steps)
        case BillingInterval.YEAR:
            return _add_months(anchor, 12 * steps)


def period_bounds(
    anchor: datetime, interval: BillingInterval, count: int, index: int
) -> tuple[datetime, datetime]:
    return (
        period_start(anchor, interval, count, index),
        period_start(anchor, interval, count, index + 1),
    )

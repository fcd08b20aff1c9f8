"""Partial aggregates of usage, and how rollups and raw edges of a window combine exactly."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from metering_svc.domain.model import Aggregation

HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)
ZERO = Decimal(0)


@dataclass(frozen=True)
class PartialAggregate:
    """Aggregate of a set of events: enough to merge with another set without the events."""

    total: Decimal = ZERO
    count: int = 0
    maximum: Decimal = ZERO
    last: Decimal = ZERO
    # Position of the last event: (occurred_at, ingestion sequence) breaks ties deterministically.
    last_position: tuple[datetime, int] | None = None

    def merge(self, other: "PartialAggregate") -> "PartialAggregate":
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        later = self if (self.last_position or ()) >= (other.last_position or ()) else other
        return PartialAggregate(
            total=self.total + other.total,
            count=self.count + other.count,
            maximum=max(self.maximum, other.maximum),
            last=later.last,
            last_position=later.last_position,
        )

    def value(self, aggregation: Aggregation, unique_count: int = 0) -> Decimal:
        match aggregation:
            case Aggregation.SUM:
                return self.total
            case Aggregation.COUNT:
                return Decimal(self.count)
            case Aggregation.MAX:
                return self.maximum
            case Aggregation.LAST:
                return self.last
            case Aggregation.UNIQUE_COUNT:
                return Decimal(unique_count)


def _floor(moment: datetime, unit: timedelta) -> datetime:
    """The start of the hour or minute of a UTC moment."""
    if unit == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def _split(
    start: datetime, end: datetime, unit: timedelta
) -> tuple[tuple[datetime, datetime] | None, tuple[tuple[datetime, datetime], ...]]:
    """[start, end) as its whole units (if any) and the partial pieces around them."""
    first = _floor(start, unit)
    first = first if first == start else first + unit
    last = _floor(end, unit)
    if first >= last:
        return None, ((start, end),)
    return (first, last), tuple((lo, hi) for lo, hi in ((start, first), (last, end)) if lo < hi)


@dataclass(frozen=True)
class WindowPlan:
    """A window [start, end) split into whole hours (read from hourly rollups), the whole
    minutes around them (minute rollups) and at most two partial minutes (raw events), so the
    cost does not grow with the events in the window."""

    hours: tuple[datetime, datetime] | None
    minutes: tuple[tuple[datetime, datetime], ...]
    edges: tuple[tuple[datetime, datetime], ...]


def plan_window(start: datetime, end: datetime) -> WindowPlan:
    hours, around = _split(start, end, HOUR)
    minutes: list[tuple[datetime, datetime]] = []
    edges: list[tuple[datetime, datetime]] = []
    for lo, hi in around:
        whole, partial = _split(lo, hi, MINUTE)
        if whole is not None:
            minutes.append(whole)
        edges.extend(partial)
    return WindowPlan(hours, tuple(minutes), tuple(edges))


@dataclass(frozen=True)
class UsageWindow:
    """The usage of one subscription over a planned window: of one event key, or of every key
    when `event_key` is empty."""

    subscription_id: str
    event_key: str
    plan: WindowPlan

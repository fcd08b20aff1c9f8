"""Partial aggregates of usage, and how rollups and raw edges of a window combine exactly."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from metering_svc.domain.model import Aggregation

BUCKET = timedelta(hours=1)
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


def bucket_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def bucket_ceil(moment: datetime) -> datetime:
    floor = bucket_floor(moment)
    return floor if floor == moment else floor + BUCKET


@dataclass(frozen=True)
class WindowPlan:
    """A window [start, end) split into whole hourly buckets (read from rollups) and at most two
    partial edges (read from raw events), so the cost does not grow with the events in between."""

    buckets: tuple[datetime, datetime] | None
    edges: tuple[tuple[datetime, datetime], ...]


def plan_window(start: datetime, end: datetime) -> WindowPlan:
    first_full, last_full = bucket_ceil(start), bucket_floor(end)
    if first_full >= last_full:
        return WindowPlan(buckets=None, edges=((start, end),))
    edges = tuple((lo, hi) for lo, hi in ((start, first_full), (last_full, end)) if lo < hi)
    return WindowPlan(buckets=(first_full, last_full), edges=edges)

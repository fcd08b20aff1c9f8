"""Partial aggregates of a window: whole hours from rollups, partial edges from raw events."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from metering_svc.domain.aggregation import PartialAggregate, WindowPlan

_NOT_CANCELED = """NOT EXISTS (
    SELECT 1 FROM metering.usage_event_cancellations c
    WHERE c.subscription_id = e.subscription_id AND c.event_id = e.id)"""

# Raw edges: at most two partial hours, given as two [lo, hi) ranges (an empty one is lo = hi).
_EDGES = """((e.occurred_at >= :lo1 AND e.occurred_at < :hi1)
    OR (e.occurred_at >= :lo2 AND e.occurred_at < :hi2))"""

_FROM_ROLLUPS = text("""
    SELECT event_key, sum(total) AS total, sum(event_count) AS event_count,
        max(max_quantity) AS maximum,
        (array_agg(last_quantity ORDER BY last_occurred_at DESC, last_seq DESC))[1] AS last,
        max(last_occurred_at) AS last_time,
        (array_agg(last_seq ORDER BY last_occurred_at DESC, last_seq DESC))[1] AS last_seq
    FROM metering.usage_rollups
    WHERE subscription_id = :subscription_id AND event_key = ANY(:event_keys)
        AND bucket_start >= :first_bucket AND bucket_start < :end_bucket AND event_count > 0
    GROUP BY event_key
""")

_FROM_EVENTS = text(f"""
    SELECT e.event_key, sum(e.quantity) AS total, count(*) AS event_count,
        max(e.quantity) AS maximum,
        (array_agg(e.quantity ORDER BY e.occurred_at DESC, e.seq DESC))[1] AS last,
        max(e.occurred_at) AS last_time,
        (array_agg(e.seq ORDER BY e.occurred_at DESC, e.seq DESC))[1] AS last_seq
    FROM metering.usage_events e
    WHERE e.subscription_id = :subscription_id AND e.event_key = ANY(:event_keys)
        AND {_EDGES} AND {_NOT_CANCELED}
    GROUP BY e.event_key
""")

_KEYS_WITH_USAGE = text(f"""
    SELECT DISTINCT event_key FROM metering.usage_rollups
    WHERE subscription_id = :subscription_id
        AND bucket_start >= :first_bucket AND bucket_start < :end_bucket AND event_count > 0
    UNION
    SELECT DISTINCT e.event_key FROM metering.usage_events e
    WHERE e.subscription_id = :subscription_id AND {_EDGES} AND {_NOT_CANCELED}
""")

_UNIQUE_COUNT = text(f"""
    SELECT count(*) FROM (
        SELECT value FROM metering.usage_unique_values
        WHERE subscription_id = :subscription_id AND event_key = :event_key
            AND property = :property AND event_count > 0
            AND bucket_start >= :first_bucket AND bucket_start < :end_bucket
        UNION
        SELECT e.properties ->> :property FROM metering.usage_events e
        WHERE e.subscription_id = :subscription_id AND e.event_key = :event_key
            AND e.properties ? :property AND {_EDGES} AND {_NOT_CANCELED}
    ) distinct_values
""")


def _window_parameters(plan: WindowPlan) -> dict[str, datetime]:
    # Absent parts become empty ranges at an arbitrary point of the window.
    anchor = plan.buckets[0] if plan.buckets else plan.edges[0][0]
    edges = [*plan.edges, (anchor, anchor), (anchor, anchor)]
    buckets = plan.buckets or (anchor, anchor)
    return {
        "first_bucket": buckets[0],
        "end_bucket": buckets[1],
        "lo1": edges[0][0],
        "hi1": edges[0][1],
        "lo2": edges[1][0],
        "hi2": edges[1][1],
    }


def _partial(row: Any) -> PartialAggregate:
    return PartialAggregate(
        total=row.total,
        count=int(row.event_count),
        maximum=row.maximum,
        last=row.last,
        last_position=(row.last_time, row.last_seq),
    )


class UsageReader:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def keys_with_usage(self, subscription_id: str, plan: WindowPlan) -> list[str]:
        rows = await self._session.scalars(
            _KEYS_WITH_USAGE, {"subscription_id": subscription_id, **_window_parameters(plan)}
        )
        return sorted(rows)

    async def aggregates(
        self, subscription_id: str, event_keys: Sequence[str], plan: WindowPlan
    ) -> dict[str, PartialAggregate]:
        """Exact aggregate per event key over the window, canceled events excluded."""
        parameters = {
            "subscription_id": subscription_id,
            "event_keys": list(event_keys),
            **_window_parameters(plan),
        }
        result: dict[str, PartialAggregate] = {}
        for statement in (_FROM_ROLLUPS, _FROM_EVENTS):
            for row in await self._session.execute(statement, parameters):
                result[row.event_key] = result.get(row.event_key, PartialAggregate()).merge(
                    _partial(row)
                )
        return result

    async def unique_count(
        self, subscription_id: str, event_key: str, property_name: str, plan: WindowPlan
    ) -> int:
        count = await self._session.scalar(
            _UNIQUE_COUNT,
            {
                "subscription_id": subscription_id,
                "event_key": event_key,
                "property": property_name,
                **_window_parameters(plan),
            },
        )
        return int(count or 0)

"""Partial aggregates of usage windows: whole hours from the hourly rollups, the whole minutes
around them from the minute rollups, the partial minutes at the edges from raw events.

Many windows are read in one statement: their parts travel as arrays through `unnest`, each row
tagged with the position of its window in the request. Callers name subscriptions they checked to
be the merchant's; every event and rollup of a subscription is its merchant's.
"""

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from metering_svc.domain.aggregation import PartialAggregate, UsageWindow


def _ranges(part: str) -> str:
    """The ranges of one part (hours, minutes or edges) of every window, from parallel arrays."""
    return f"""
    {part}_ranges AS (
        SELECT * FROM unnest(CAST(:{part}_windows AS int[]),
            CAST(:{part}_subscriptions AS text[]), CAST(:{part}_keys AS text[]),
            CAST(:{part}_los AS timestamptz[]), CAST(:{part}_his AS timestamptz[]))
            AS x(window_index, subscription_id, event_key, lo, hi)
    )"""


_PARTS = ",".join(_ranges(part) for part in ("hour", "minute", "edge"))

_NOT_CANCELED = """NOT EXISTS (
                SELECT 1 FROM metering.usage_event_cancellations c
                WHERE c.subscription_id = e.subscription_id AND c.event_id = e.id)"""

# The events of edge x that count.
_IN_EDGE = f"""e.subscription_id = x.subscription_id AND e.occurred_at >= x.lo
            AND e.occurred_at < x.hi AND (x.event_key = '' OR e.event_key = x.event_key)
            AND {_NOT_CANCELED}"""


# Per range, a LATERAL subquery: the planner cannot misjudge the size of an `unnest`, so each
# range is an index range scan, of (subscription_id, event_key, bucket_start) for the rollups and
# of (subscription_id, occurred_at) for an edge, which lies within one minute. That index carries
# every column an edge aggregates (migration 0003), so no event row is read; the latest event of
# a key is then found by its time, without sorting the edge.
def _from_rollups(part: str, table: str) -> str:
    return f"""
    SELECT b.window_index, r.*
    FROM {part}_ranges b CROSS JOIN LATERAL (
        SELECT event_key, sum(total) AS total, sum(event_count) AS event_count,
            max(max_quantity) AS maximum,
            (array_agg(last_quantity ORDER BY last_occurred_at DESC, last_seq DESC))[1] AS last,
            max(last_occurred_at) AS last_time,
            (array_agg(last_seq ORDER BY last_occurred_at DESC, last_seq DESC))[1] AS last_seq
        FROM metering.{table}
        WHERE subscription_id = b.subscription_id AND bucket_start >= b.lo
            AND bucket_start < b.hi AND (b.event_key = '' OR event_key = b.event_key)
            AND event_count > 0
        GROUP BY event_key
    ) r"""


_AGGREGATES = text(f"""
    WITH {_PARTS}
    {_from_rollups("hour", "usage_rollups")}
    UNION ALL
    {_from_rollups("minute", "usage_minute_rollups")}
    UNION ALL
    SELECT x.window_index, a.event_key, a.total, a.event_count, a.maximum, latest.quantity,
        a.last_time, latest.seq
    FROM edge_ranges x
    CROSS JOIN LATERAL (
        SELECT event_key, sum(quantity) AS total, count(*) AS event_count,
            max(quantity) AS maximum, max(occurred_at) AS last_time
        FROM metering.usage_events e
        WHERE {_IN_EDGE}
        GROUP BY event_key
    ) a
    CROSS JOIN LATERAL (
        SELECT e.quantity, e.seq FROM metering.usage_events e
        WHERE e.subscription_id = x.subscription_id AND e.occurred_at = a.last_time
            AND e.event_key = a.event_key AND {_NOT_CANCELED}
        ORDER BY e.seq DESC LIMIT 1
    ) latest
""")

# Distinct values of a property: the hourly value sets, plus the values seen in the edges. Each
# window names one event key, and its property at the same position of :properties.
_UNIQUE_COUNTS = text(f"""
    WITH {_PARTS}
    SELECT window_index, count(DISTINCT value) AS distinct_values FROM (
        SELECT b.window_index, v.value
        FROM hour_ranges b CROSS JOIN LATERAL (
            SELECT value FROM metering.usage_unique_values
            WHERE subscription_id = b.subscription_id AND event_key = b.event_key
                AND property = (CAST(:properties AS text[]))[b.window_index + 1]
                AND bucket_start >= b.lo AND bucket_start < b.hi AND event_count > 0
        ) v
        UNION ALL
        SELECT x.window_index, e.value
        FROM edge_ranges x CROSS JOIN LATERAL (
            SELECT e.properties ->> (CAST(:properties AS text[]))[x.window_index + 1] AS value
            FROM metering.usage_events e
            WHERE {_IN_EDGE}
                AND e.properties ? (CAST(:properties AS text[]))[x.window_index + 1]
        ) e
    ) seen
    GROUP BY window_index
""")


# Which of :values of a property the events of each window (one event key each) hold already.
_SEEN_VALUES = text(f"""
    WITH {_PARTS}
    SELECT DISTINCT window_index, value FROM (
        SELECT b.window_index, v.value
        FROM hour_ranges b CROSS JOIN LATERAL (
            SELECT value FROM metering.usage_unique_values
            WHERE subscription_id = b.subscription_id AND event_key = b.event_key
                AND property = (CAST(:properties AS text[]))[b.window_index + 1]
                AND bucket_start >= b.lo AND bucket_start < b.hi AND event_count > 0
                AND value = ANY(CAST(:values AS text[]))
        ) v
        UNION ALL
        SELECT x.window_index, e.value
        FROM edge_ranges x CROSS JOIN LATERAL (
            SELECT e.properties ->> (CAST(:properties AS text[]))[x.window_index + 1] AS value
            FROM metering.usage_events e
            WHERE {_IN_EDGE}
                AND e.properties ->> (CAST(:properties AS text[]))[x.window_index + 1]
                    = ANY(CAST(:values AS text[]))
        ) e
    ) seen
""")


def _parts(windows: Sequence[UsageWindow], *, minutes_raw: bool = False) -> dict[str, Any]:
    """The hours, minutes and edges of every window, as parallel arrays. Distinct values have
    hourly sets only, so for them (`minutes_raw`) the whole minutes are read raw, as edges."""
    columns: dict[str, list[Any]] = {
        f"{part}_{column}": []
        for part in ("hour", "minute", "edge")
        for column in ("windows", "subscriptions", "keys", "los", "his")
    }
    for index, window in enumerate(windows):
        plan = window.plan
        ranges = [("hour", *plan.hours)] if plan.hours else []
        ranges += [("edge" if minutes_raw else "minute", lo, hi) for lo, hi in plan.minutes]
        for part, lo, hi in ranges + [("edge", lo, hi) for lo, hi in plan.edges]:
            columns[f"{part}_windows"].append(index)
            columns[f"{part}_subscriptions"].append(window.subscription_id)
            columns[f"{part}_keys"].append(window.event_key)
            columns[f"{part}_los"].append(lo)
            columns[f"{part}_his"].append(hi)
    return columns


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

    async def aggregates(self, windows: Sequence[UsageWindow]) -> list[dict[str, PartialAggregate]]:
        """Per window, the exact aggregate of each event key with usage in it (canceled events
        excluded); a key without usage is absent."""
        result: list[dict[str, PartialAggregate]] = [{} for _ in windows]
        rows = await self._session.execute(_AGGREGATES, _parts(windows))
        for row in rows:
            found = result[row.window_index]
            found[row.event_key] = found.get(row.event_key, PartialAggregate()).merge(_partial(row))
        return result

    async def unique_counts(
        self, windows: Sequence[UsageWindow], properties: Sequence[str]
    ) -> list[int]:
        """Per window of one event key, the distinct values of its property (of the same
        position in `properties`) among the window's events."""
        if not windows:
            return []
        parameters = {**_parts(windows, minutes_raw=True), "properties": list(properties)}
        counts = [0] * len(windows)
        for row in await self._session.execute(_UNIQUE_COUNTS, parameters):
            counts[row.window_index] = int(row.distinct_values)
        return counts

    async def seen_values(
        self, windows: Sequence[UsageWindow], properties: Sequence[str], values: Collection[str]
    ) -> list[set[str]]:
        """Per window of one event key, which of `values` its events hold already as their
        property (of the same position in `properties`)."""
        seen: list[set[str]] = [set() for _ in windows]
        if not windows or not values:
            return seen
        parameters = {
            **_parts(windows, minutes_raw=True),
            "properties": list(properties),
            "values": sorted(values),
        }
        for row in await self._session.execute(_SEEN_VALUES, parameters):
            seen[row.window_index].add(row.value)
        return seen

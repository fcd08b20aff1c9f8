"""Monthly partitions of usage_events, created ahead of time and on demand for older months."""

from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Serializes partition DDL between replicas (an arbitrary constant of this service).
_PARTITION_LOCK = 7_310_001


def month_of(moment: datetime) -> date:
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_ahead(now: datetime, count: int) -> list[date]:
    months = [month_of(now)]
    for _ in range(count):
        months.append(next_month(months[-1]))
    return months


class PartitionKeeper:
    """Knows which monthly partitions exist (cached per process) and creates missing ones."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._known: set[date] = set()

    async def ensure(self, months: Iterable[date]) -> None:
        missing = sorted(set(months) - self._known)
        if not missing:
            return
        async with self._engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PARTITION_LOCK}
            )
            for month in missing:
                name = f"usage_events_{month:%Y_%m}"
                await connection.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS metering.{name} "
                        "PARTITION OF metering.usage_events "
                        f"FOR VALUES FROM ('{month.isoformat()} 00:00+00') "
                        f"TO ('{next_month(month).isoformat()} 00:00+00')"
                    )
                )
        self._known.update(missing)

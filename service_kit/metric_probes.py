"""Gauges every service with a status column or an outbox reports, read when Prometheus scrapes."""

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from service_kit.clock import Clock
from service_kit.metrics import Probe, ServiceMetrics


def status_probe(
    metrics: ServiceMetrics,
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    status: InstrumentedAttribute[str],
    statuses: Iterable[str],
) -> Probe:
    """`name{status}`: how many rows have each status (every status, 0 included)."""
    known = list(statuses)

    async def probe() -> list[Metric]:
        async with sessions() as session:
            rows = await session.execute(select(status, func.count()).group_by(status))
            counts = {str(value): int(count) for value, count in rows}
        return [
            metrics.gauge_by(
                name,
                f"{name.capitalize()} by status, all merchants.",
                "status",
                {value: counts.get(value, 0) for value in known},
            )
        ]

    return probe


def outbox_probe(
    metrics: ServiceMetrics, sessions: async_sessionmaker[AsyncSession], outbox: Table, clock: Clock
) -> Probe:
    """The messages of the service's outbox waiting for delivery and how long the oldest has
    waited, and the dead letters (parked, not retried: each one an alert)."""

    async def probe() -> list[Metric]:
        waiting = outbox.c.delivered_time.is_(None) & outbox.c.dead_time.is_(None)
        async with sessions() as session:
            rows = await session.execute(
                select(
                    func.count().filter(waiting),
                    func.min(outbox.c.create_time).filter(waiting),
                    func.count().filter(outbox.c.dead_time.is_not(None)),
                ).where(outbox.c.delivered_time.is_(None))
            )
            count, oldest, dead = rows.one()
        age = max(0.0, (clock.now() - oldest).total_seconds()) if oldest else 0.0
        return [
            metrics.gauge(
                "outbox_backlog_messages", "Outbox messages not yet delivered.", int(count)
            ),
            metrics.gauge(
                "outbox_oldest_undelivered_seconds",
                "Age of the oldest undelivered outbox message; 0 without a backlog.",
                age,
            ),
            metrics.gauge(
                "outbox_dead_messages",
                "Outbox messages parked as dead letters: refused for good by their consumer.",
                int(dead or 0),
            ),
        ]

    return probe

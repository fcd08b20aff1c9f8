"""Metering's unit of work and the dependencies its use cases share."""

from dataclasses import dataclass
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from metering_svc.adapters.event_store import EventStore
from metering_svc.adapters.meter_repository import MeterRepository
from metering_svc.adapters.metrics import MeteringMetrics
from metering_svc.adapters.partitions import PartitionKeeper
from metering_svc.adapters.replicas import ReplicaRepository
from metering_svc.adapters.tables import idempotency_records
from metering_svc.adapters.usage_reader import UsageReader
from metering_svc.domain.entitlements import UsageSnapshot
from metering_svc.settings import MeteringSettings
from service_kit.clock import Clock
from service_kit.database import UnitOfWork
from service_kit.fresh_cache import FreshCache
from service_kit.idempotency import IdempotencyStore


class MeteringUnitOfWork(UnitOfWork):
    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.meters = MeterRepository(self.session)
        self.events = EventStore(self.session)
        self.replicas = ReplicaRepository(self.session)
        self.usage = UsageReader(self.session)
        self.idempotency = IdempotencyStore(idempotency_records)
        return self


@dataclass(frozen=True)
class Metering:
    """Everything a metering use case needs, wired once in bootstrap.py."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    partitions: PartitionKeeper
    clock: Clock
    settings: MeteringSettings
    metrics: MeteringMetrics
    # CheckEntitlement's answers, by (subscription, event key or "" for its features).
    entitlements: FreshCache[UsageSnapshot]

    def unit_of_work(self) -> MeteringUnitOfWork:
        return MeteringUnitOfWork(self.sessions)

"""Wires metering's real dependencies, and hosts it on a gRPC server."""

import asyncio

from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from metering_svc.adapters.metrics import MeteringMetrics
from metering_svc.adapters.partitions import PartitionKeeper, months_ahead
from metering_svc.api.servicer import MeteringServicer
from metering_svc.service_layer.unit_of_work import Metering
from metering_svc.settings import MeteringSettings
from service_kit.background import every
from service_kit.clock import Clock, SystemClock
from service_kit.database import create_engine, session_factory
from service_kit.fresh_cache import FreshCache
from service_kit.grpc_server import RunningServer, ServiceBinding, start_server

PARTITION_CHECK_SECONDS = 3600


def build(settings: MeteringSettings, clock: Clock | None = None) -> Metering:
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    return Metering(
        engine=engine,
        sessions=session_factory(engine),
        partitions=PartitionKeeper(engine),
        clock=clock or SystemClock(),
        settings=settings,
        metrics=MeteringMetrics(),
        entitlements=FreshCache(settings.entitlement_cache_seconds),
    )


async def start(metering: Metering) -> RunningServer:
    """Creates the partitions ahead of time, then serves on the configured address."""
    await metering.partitions.ensure(
        months_ahead(metering.clock.now(), metering.settings.partitions_ahead)
    )
    binding = ServiceBinding.of(
        metering_pb2.DESCRIPTOR.services_by_name["MeteringService"],
        MeteringServicer(metering),
        metering_pb2_grpc.add_MeteringServiceServicer_to_server,
    )
    return await start_server([binding], metering.settings, metering.metrics)


def start_background_work(metering: Metering) -> list[asyncio.Task[None]]:
    """Keeps the event partitions created ahead as the months pass."""

    async def keep_partitions_ahead() -> None:
        await metering.partitions.ensure(
            months_ahead(metering.clock.now(), metering.settings.partitions_ahead)
        )

    return [
        asyncio.create_task(every(PARTITION_CHECK_SECONDS, "partitions", keep_partitions_ahead))
    ]


async def close(metering: Metering) -> None:
    await metering.engine.dispose()

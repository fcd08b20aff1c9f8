"""python -m metering_svc [serve|migrate]"""

import asyncio
from pathlib import Path

from metering_svc import bootstrap
from metering_svc.adapters.partitions import months_ahead
from metering_svc.settings import MeteringSettings
from service_kit.grpc_server import RunningServer
from service_kit.service_main import Cleanup, run_service

PARTITION_CHECK_SECONDS = 3600


async def serve(settings: MeteringSettings) -> tuple[RunningServer, Cleanup]:
    metering = bootstrap.build(settings)
    running = await bootstrap.start(metering)

    async def keep_partitions_ahead() -> None:
        while True:
            await asyncio.sleep(PARTITION_CHECK_SECONDS)
            await metering.partitions.ensure(
                months_ahead(metering.clock.now(), settings.partitions_ahead)
            )

    upkeep = asyncio.create_task(keep_partitions_ahead())

    async def cleanup() -> None:
        upkeep.cancel()
        await metering.engine.dispose()

    return running, cleanup


if __name__ == "__main__":
    settings = MeteringSettings()
    run_service(
        "metering_svc", settings, Path(__file__).parent / "migrations", lambda: serve(settings)
    )

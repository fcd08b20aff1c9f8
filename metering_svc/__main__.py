"""python -m metering_svc [serve|migrate]"""

from pathlib import Path

from metering_svc import bootstrap
from metering_svc.settings import MeteringSettings
from service_kit.grpc_server import RunningServer
from service_kit.service_main import Cleanup, hosted, run_service


async def serve(settings: MeteringSettings) -> tuple[RunningServer, Cleanup]:
    service = bootstrap.build(settings)
    running = await bootstrap.start(service)
    background = bootstrap.start_background_work(service)
    return hosted(running, background, lambda: bootstrap.close(service))


if __name__ == "__main__":
    settings = MeteringSettings()
    run_service(
        "metering_svc", settings, Path(__file__).parent / "migrations", lambda: serve(settings)
    )

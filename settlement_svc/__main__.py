"""python -m settlement_svc [serve|migrate|outbox-retry]"""

from pathlib import Path

from service_kit.grpc_server import RunningServer
from service_kit.service_main import Cleanup, hosted, run_service
from settlement_svc import bootstrap
from settlement_svc.adapters.tables import outbox
from settlement_svc.settings import SettlementSettings


async def serve(settings: SettlementSettings) -> tuple[RunningServer, Cleanup]:
    service = bootstrap.build(settings)
    running = await bootstrap.start(service)
    background = bootstrap.start_background_work(service, running)
    return hosted(running, background, lambda: bootstrap.close(service))


if __name__ == "__main__":
    settings = SettlementSettings()
    run_service(
        "settlement_svc",
        settings,
        Path(__file__).parent / "migrations",
        lambda: serve(settings),
        outbox=outbox,
    )

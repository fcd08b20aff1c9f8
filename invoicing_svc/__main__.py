"""python -m invoicing_svc [serve|migrate|outbox-retry]"""

from pathlib import Path

from invoicing_svc import bootstrap
from invoicing_svc.adapters.tables import outbox
from invoicing_svc.settings import InvoicingSettings
from service_kit.grpc_server import RunningServer
from service_kit.service_main import Cleanup, hosted, run_service


async def serve(settings: InvoicingSettings) -> tuple[RunningServer, Cleanup]:
    service = bootstrap.build(settings)
    running = await bootstrap.start(service)
    background = bootstrap.start_background_work(service)
    return hosted(running, background, lambda: bootstrap.close(service))


if __name__ == "__main__":
    settings = InvoicingSettings()
    run_service(
        "invoicing_svc",
        settings,
        Path(__file__).parent / "migrations",
        lambda: serve(settings),
        outbox=outbox,
    )

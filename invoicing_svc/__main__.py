"""python -m invoicing_svc [serve|migrate]"""

from pathlib import Path

from invoicing_svc import bootstrap
from invoicing_svc.settings import InvoicingSettings
from service_kit.grpc_server import RunningServer
from service_kit.service_main import Cleanup, run_service


async def serve(settings: InvoicingSettings) -> tuple[RunningServer, Cleanup]:
    invoicing = bootstrap.build(settings)
    running = await bootstrap.start(invoicing)
    background = bootstrap.start_background_work(invoicing)

    async def cleanup() -> None:
        for task in background:
            task.cancel()
        await bootstrap.close(invoicing)

    return running, cleanup


if __name__ == "__main__":
    settings = InvoicingSettings()
    run_service(
        "invoicing_svc", settings, Path(__file__).parent / "migrations", lambda: serve(settings)
    )

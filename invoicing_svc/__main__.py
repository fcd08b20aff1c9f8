"""python -m invoicing_svc [serve|migrate]"""

from collections.abc import Awaitable, Callable

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from invoicing_svc.settings import InvoicingSettings
from service_kit.grpc_server import RunningServer, ServiceBinding, start_server
from service_kit.service_main import run_service

SERVICE_NAME = invoicing_pb2.DESCRIPTOR.services_by_name["InvoicingService"].full_name


async def serve(settings: InvoicingSettings) -> tuple[RunningServer, Callable[[], Awaitable[None]]]:
    servicer = invoicing_pb2_grpc.InvoicingServiceServicer()
    binding = ServiceBinding(
        full_name=SERVICE_NAME,
        register=lambda server: invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server(
            servicer, server
        ),
    )
    running = await start_server([binding], host=settings.grpc_host, port=settings.grpc_port)

    async def cleanup() -> None:
        return None

    return running, cleanup


if __name__ == "__main__":
    settings = InvoicingSettings()
    run_service("invoicing_svc", settings, None, lambda: serve(settings))

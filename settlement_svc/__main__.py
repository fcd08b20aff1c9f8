"""python -m settlement_svc [serve|migrate]"""

from collections.abc import Awaitable, Callable

from billing.settlement.v1 import settlement_pb2, settlement_pb2_grpc
from service_kit.grpc_server import RunningServer, ServiceBinding, start_server
from service_kit.service_main import run_service
from settlement_svc.settings import SettlementSettings

SERVICE_NAME = settlement_pb2.DESCRIPTOR.services_by_name["SettlementService"].full_name


async def serve(
    settings: SettlementSettings,
) -> tuple[RunningServer, Callable[[], Awaitable[None]]]:
    servicer = settlement_pb2_grpc.SettlementServiceServicer()
    binding = ServiceBinding(
        full_name=SERVICE_NAME,
        register=lambda server: settlement_pb2_grpc.add_SettlementServiceServicer_to_server(
            servicer, server
        ),
    )
    running = await start_server([binding], host=settings.grpc_host, port=settings.grpc_port)

    async def cleanup() -> None:
        return None

    return running, cleanup


if __name__ == "__main__":
    settings = SettlementSettings()
    run_service("settlement_svc", settings, None, lambda: serve(settings))

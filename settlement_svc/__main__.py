"""python -m settlement_svc [serve|migrate]"""

from billing.settlement.v1 import settlement_pb2, settlement_pb2_grpc
from service_kit.grpc_server import ServiceBinding
from service_kit.service_main import run_service, serve_bindings
from settlement_svc.settings import SettlementSettings

if __name__ == "__main__":
    settings = SettlementSettings()
    binding = ServiceBinding.of(
        settlement_pb2.DESCRIPTOR.services_by_name["SettlementService"],
        settlement_pb2_grpc.SettlementServiceServicer(),
        settlement_pb2_grpc.add_SettlementServiceServicer_to_server,
    )
    run_service("settlement_svc", settings, None, serve_bindings(settings, [binding]))

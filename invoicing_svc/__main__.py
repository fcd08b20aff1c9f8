"""python -m invoicing_svc [serve|migrate]"""

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from invoicing_svc.settings import InvoicingSettings
from service_kit.grpc_server import ServiceBinding
from service_kit.service_main import run_service, serve_bindings

if __name__ == "__main__":
    settings = InvoicingSettings()
    binding = ServiceBinding.of(
        invoicing_pb2.DESCRIPTOR.services_by_name["InvoicingService"],
        invoicing_pb2_grpc.InvoicingServiceServicer(),
        invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server,
    )
    run_service("invoicing_svc", settings, None, serve_bindings(settings, [binding]))

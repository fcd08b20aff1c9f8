"""Invoicing's calls to settlement: the ledger records finalized and voided invoices."""

from billing.settlement.v1 import settlement_pb2 as pb
from billing.settlement.v1 import settlement_pb2_grpc
from invoicing_svc.domain.model import Invoice, InvoiceStatus
from service_kit.channels import open_channel
from service_kit.credentials import ServiceCredentials
from service_kit.tenancy import MERCHANT_METADATA_KEY


class SettlementClient:
    def __init__(
        self, address: str, credentials: ServiceCredentials, deadline_seconds: float
    ) -> None:
        self._channel = open_channel(address, credentials)
        self._stub = settlement_pb2_grpc.SettlementServiceStub(self._channel)
        self._deadline = deadline_seconds

    async def post_invoice(self, invoice: Invoice) -> None:
        await self._stub.RecordInvoice(
            pb.RecordInvoiceRequest(
                invoice_id=invoice.id,
                user_id=invoice.user_id,
                amount=f"{invoice.amount:f}",
                voided=invoice.status is InvoiceStatus.VOID,
            ),
            metadata=((MERCHANT_METADATA_KEY, invoice.merchant_id),),
            timeout=self._deadline,
        )

    async def close(self) -> None:
        await self._channel.close()

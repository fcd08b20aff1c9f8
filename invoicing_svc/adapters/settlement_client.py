"""Invoicing's calls to settlement: the ledger records finalized and voided invoices."""

import asyncio
from collections.abc import Sequence

from billing.settlement.v1 import settlement_pb2 as pb
from billing.settlement.v1 import settlement_pb2_grpc
from invoicing_svc.adapters.batch_calls import per_call
from invoicing_svc.domain.model import Invoice, InvoiceStatus
from service_kit.backend_calls import answer_of
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

    async def post_invoices(self, invoices: Sequence[Invoice]) -> None:
        """The ledger records each invoice (reverses a voided one); one call per merchant (and
        1,000)."""

        async def post(merchant_id: str, chunk: list[Invoice]) -> None:
            await answer_of(
                self._stub.BatchRecordInvoices(
                    pb.BatchRecordInvoicesRequest(
                        invoices=[
                            pb.RecordInvoiceRequest(
                                invoice_id=invoice.id,
                                user_id=invoice.user_id,
                                amount=f"{invoice.amount:f}",
                                voided=invoice.status is InvoiceStatus.VOID,
                            )
                            for invoice in chunk
                        ]
                    ),
                    metadata=((MERCHANT_METADATA_KEY, merchant_id),),
                    timeout=self._deadline,
                ),
                "settlement",
            )

        await asyncio.gather(*(post(m, chunk) for m, chunk in per_call(invoices)))

    async def close(self) -> None:
        await self._channel.close()

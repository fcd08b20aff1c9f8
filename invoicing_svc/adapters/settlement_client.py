"""Invoicing's calls to settlement: the ledger records finalized and voided invoices, and
subscribers' prepaid credits pay part of invoices as they are finalized."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.settlement.v1 import settlement_pb2 as pb
from billing.settlement.v1 import settlement_pb2_grpc
from invoicing_svc.adapters.batch_calls import per_call
from invoicing_svc.domain.credits import CreditReport
from invoicing_svc.domain.model import Invoice, InvoiceStatus
from service_kit.backend_calls import answer_of
from service_kit.channels import open_channel
from service_kit.credentials import ServiceCredentials
from service_kit.tenancy import MERCHANT_METADATA_KEY


@dataclass(frozen=True)
class _Keyed:
    invoice: Invoice
    key: str

    @property
    def merchant_id(self) -> str:
        return self.invoice.merchant_id


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
                                top_up=invoice.top_up,
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

    async def apply_credits(
        self, invoices: Sequence[tuple[Invoice, str]]
    ) -> tuple[list[Decimal], list[CreditReport]]:
        """Settlement spends the subscribers' credits on each (invoice, key): what it spent on
        each, in order, and each subscriber's balance after. A key seen before answers what was
        spent on it then (less when the amount is now lower); one call per merchant (and
        1,000)."""
        reports: list[CreditReport] = []

        async def apply(merchant_id: str, chunk: list[_Keyed]) -> list[Decimal]:
            answer = await answer_of(
                self._stub.ApplyCredits(
                    pb.ApplyCreditsRequest(
                        applications=[
                            pb.CreditApplication(
                                key=keyed.key,
                                invoice_id=keyed.invoice.id,
                                user_id=keyed.invoice.user_id,
                                amount=f"{keyed.invoice.amount:f}",
                            )
                            for keyed in chunk
                        ]
                    ),
                    metadata=((MERCHANT_METADATA_KEY, merchant_id),),
                    timeout=self._deadline,
                ),
                "settlement",
            )
            reports.extend(
                CreditReport(merchant_id, b.user_id, Decimal(b.balance), b.version)
                for b in answer.balances
            )
            return [Decimal(applied) for applied in answer.applied]

        calls = per_call([_Keyed(invoice, key) for invoice, key in invoices])
        answers = await asyncio.gather(*(apply(m, chunk) for m, chunk in calls))
        spent = {
            keyed.key: applied
            for (_, chunk), applied_each in zip(calls, answers, strict=True)
            for keyed, applied in zip(chunk, applied_each, strict=True)
        }
        return [spent[key] for _, key in invoices], reports

    async def close(self) -> None:
        await self._channel.close()

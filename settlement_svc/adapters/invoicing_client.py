"""Settlement's calls to invoicing: what is owed, and what a verified payment settles."""

from datetime import datetime
from decimal import Decimal

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from service_kit.backend_calls import answer_of
from service_kit.channels import open_channel
from service_kit.credentials import ServiceCredentials
from service_kit.errors import FailedPrecondition
from service_kit.proto_time import to_timestamp
from service_kit.tenancy import MERCHANT_METADATA_KEY
from settlement_svc.domain.mandates import Mandate
from settlement_svc.domain.model import CheckoutStatus, InvoiceStatus, Payable, Settlement
from settlement_svc.domain.reconciliation import ReportedInvoice


def _invoice_status(status: pb.InvoiceStatus.ValueType) -> InvoiceStatus:
    return InvoiceStatus(pb.InvoiceStatus.Name(status).removeprefix("INVOICE_STATUS_"))


class InvoicingClient:
    def __init__(
        self, address: str, credentials: ServiceCredentials, deadline_seconds: float
    ) -> None:
        self._channel = open_channel(address, credentials)
        self._stub = invoicing_pb2_grpc.InvoicingServiceStub(self._channel)
        self._deadline = deadline_seconds

    def _metadata(self, merchant_id: str) -> tuple[tuple[str, str]]:
        return ((MERCHANT_METADATA_KEY, merchant_id),)

    async def invoice(self, merchant_id: str, invoice_id: str) -> Payable:
        invoice = await answer_of(
            self._stub.GetInvoice(
                pb.GetInvoiceRequest(id=invoice_id),
                metadata=self._metadata(merchant_id),
                timeout=self._deadline,
            ),
            "invoicing",
            what=f"invoice {invoice_id}",
            field="invoice_id",
        )
        return Payable(
            _invoice_status(invoice.status),
            Decimal(invoice.amount),
            invoice.user_id,
        )

    async def checkout(self, merchant_id: str, session_id: str) -> Payable:
        session = await answer_of(
            self._stub.GetCheckoutSession(
                pb.GetCheckoutSessionRequest(id=session_id),
                metadata=self._metadata(merchant_id),
                timeout=self._deadline,
            ),
            "invoicing",
            what=f"checkout session {session_id}",
            field="checkout_session_id",
        )
        return Payable(
            CheckoutStatus(
                pb.CheckoutSessionStatus.Name(session.status).removeprefix(
                    "CHECKOUT_SESSION_STATUS_"
                )
            ),
            Decimal(session.amount_due),
            session.user_id,
            session.payment.transaction_hash,
            session.payment.payer_wallet_address,
        )

    async def subscriber(self, merchant_id: str, subscription_id: str) -> str:
        """The user id of the merchant's subscription; FAILED_PRECONDITION when it is canceled."""
        subscription = await answer_of(
            self._stub.GetSubscription(
                pb.GetSubscriptionRequest(id=subscription_id),
                metadata=self._metadata(merchant_id),
                timeout=self._deadline,
            ),
            "invoicing",
            what=f"subscription {subscription_id}",
            field="subscription_id",
        )
        if subscription.status == pb.SUBSCRIPTION_STATUS_CANCELED:
            raise FailedPrecondition(
                f"subscription {subscription_id} is canceled", field="subscription_id"
            )
        return subscription.user_id

    async def invoices(self, merchant_id: str) -> list[ReportedInvoice]:
        found: list[ReportedInvoice] = []
        token = ""
        while True:
            page = await answer_of(
                self._stub.ListInvoices(
                    pb.ListInvoicesRequest(page_size=1000, page_token=token),
                    metadata=self._metadata(merchant_id),
                    timeout=self._deadline,
                ),
                "invoicing",
            )
            found += [
                ReportedInvoice(
                    id=invoice.id,
                    status=_invoice_status(invoice.status),
                    amount=Decimal(invoice.amount),
                    user_id=invoice.user_id,
                    settlement_id=invoice.settlement_id,
                    finalized=invoice.HasField("finalize_time"),
                )
                for invoice in page.invoices
            ]
            token = page.next_page_token
            if not token:
                return found

    async def settled(self, settlement: Settlement) -> None:
        """The payment is verified: the invoice is paid, or the checkout completes."""
        summary = summary_of(settlement)
        metadata = self._metadata(settlement.merchant_id)
        if settlement.invoice_id:
            await answer_of(
                self._stub.MarkInvoicePaid(
                    pb.MarkInvoicePaidRequest(
                        id=settlement.invoice_id, settlement_id=settlement.id, settlement=summary
                    ),
                    metadata=metadata,
                    timeout=self._deadline,
                ),
                "invoicing",
            )
        else:
            await answer_of(
                self._stub.ConfirmCheckoutPayment(
                    pb.ConfirmCheckoutPaymentRequest(
                        id=settlement.checkout_session_id,
                        settlement_id=settlement.id,
                        settlement=summary,
                    ),
                    metadata=metadata,
                    timeout=self._deadline,
                ),
                "invoicing",
            )

    async def failed(self, settlement: Settlement) -> None:
        await answer_of(
            self._stub.ReportSettlementFailure(
                pb.ReportSettlementFailureRequest(settlement=summary_of(settlement)),
                metadata=self._metadata(settlement.merchant_id),
                timeout=self._deadline,
            ),
            "invoicing",
        )

    async def collection_failed(
        self,
        merchant_id: str,
        invoice_id: str,
        number: int,
        reason: str,
        detail: str,
        next_attempt_time: datetime | None,
    ) -> None:
        """A collection attempt failed: invoicing duns (webhook, PAST_DUE, the final action)."""
        request = pb.ReportPaymentAttemptFailureRequest(
            invoice_id=invoice_id,
            attempt_number=number,
            reason=pb.PaymentFailureReason.Value(f"PAYMENT_FAILURE_REASON_{reason}"),
            detail=detail,
        )
        if next_attempt_time is not None:
            request.next_attempt_time.CopyFrom(to_timestamp(next_attempt_time))
        await answer_of(
            self._stub.ReportPaymentAttemptFailure(
                request, metadata=self._metadata(merchant_id), timeout=self._deadline
            ),
            "invoicing",
        )

    async def mandate_changed(self, mandate: Mandate, change: str, transaction_hash: str) -> None:
        """The contract holds the mandate now, or no longer (the mandate.* webhooks)."""
        request = pb.ReportMandateChangeRequest(
            change=pb.MandateChange.Value(f"MANDATE_CHANGE_{change}"),
            mandate=pb.MandateSummary(
                mandate_id=mandate.id,
                subscription_id=mandate.subscription_id,
                payer_wallet_address=mandate.payer_wallet_address,
                merchant_wallet_address=mandate.merchant_wallet_address,
                contract_address=mandate.contract_address,
                cap=f"{mandate.cap:f}",
                period_seconds=mandate.period_seconds,
                expire_time=to_timestamp(mandate.expire_time),
                transaction_hash=transaction_hash,
            ),
        )
        await answer_of(
            self._stub.ReportMandateChange(
                request, metadata=self._metadata(mandate.merchant_id), timeout=self._deadline
            ),
            "invoicing",
        )

    async def credit_balance_changed(
        self, merchant_id: str, user_id: str, balance: Decimal, version: int
    ) -> None:
        """The subscriber's credit balance now: invoicing spends credits only where it is."""
        request = pb.ReportCreditBalanceRequest(
            user_id=user_id, balance=f"{balance:f}", version=version
        )
        await answer_of(
            self._stub.ReportCreditBalance(
                request, metadata=self._metadata(merchant_id), timeout=self._deadline
            ),
            "invoicing",
        )

    async def close(self) -> None:
        await self._channel.close()


def summary_of(settlement: Settlement) -> pb.SettlementSummary:
    return pb.SettlementSummary(
        settlement_id=settlement.id,
        invoice_id=settlement.invoice_id,
        checkout_session_id=settlement.checkout_session_id,
        transaction_hash=settlement.transaction_hash,
        reference_hash=settlement.reference_hash,
        payer_wallet_address=settlement.payer_wallet_address,
        merchant_wallet_address=settlement.merchant_wallet_address,
        amount_paid=f"{settlement.amount_paid:f}" if settlement.amount_paid is not None else "",
        block_number=settlement.block_number or 0,
        failure_reason=settlement.failure_reason.value if settlement.failure_reason else "",
        failure_detail=settlement.failure_detail,
    )

"""Invoicing's calls to metering: usage summaries, and the subscription and invoice replicas."""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

import grpc

from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from invoicing_svc.domain.model import Invoice, Subscription
from service_kit.proto_time import to_timestamp
from service_kit.tenancy import MERCHANT_METADATA_KEY


class MeteringClient:
    def __init__(self, address: str, deadline_seconds: float) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = metering_pb2_grpc.MeteringServiceStub(self._channel)
        self._deadline = deadline_seconds

    def _metadata(self, merchant_id: str) -> tuple[tuple[str, str]]:
        return ((MERCHANT_METADATA_KEY, merchant_id),)

    async def usage(
        self, merchant_id: str, subscription_id: str, start: datetime, end: datetime
    ) -> Mapping[str, Decimal]:
        """Each event key's aggregate over [start, end), per its meter (SUM without one)."""
        response = await self._stub.GetUsageSummary(
            pb.GetUsageSummaryRequest(
                subscription_id=subscription_id,
                start_time=to_timestamp(start),
                end_time=to_timestamp(end),
            ),
            metadata=self._metadata(merchant_id),
            timeout=self._deadline,
        )
        return {summary.event_key: Decimal(summary.value) for summary in response.summaries}

    async def push_subscription(self, subscription: Subscription) -> None:
        state = pb.SubscriptionState(
            subscription_id=subscription.id,
            service_id=subscription.service_id,
            user_id=subscription.user_id,
            status=pb.SubscriptionStatus.Value(f"SUBSCRIPTION_STATUS_{subscription.status.value}"),
            current_period_start=to_timestamp(subscription.current_period_start),
            current_period_end=to_timestamp(subscription.current_period_end),
            version=subscription.version,
        )
        if subscription.test_clock_time is not None:
            state.test_clock_time.CopyFrom(to_timestamp(subscription.test_clock_time))
        await self._stub.UpsertSubscriptionState(
            pb.UpsertSubscriptionStateRequest(state=state),
            metadata=self._metadata(subscription.merchant_id),
            timeout=self._deadline,
        )

    async def push_invoice(self, invoice: Invoice) -> None:
        await self._stub.UpsertInvoiceReference(
            pb.UpsertInvoiceReferenceRequest(
                invoice=pb.InvoiceReference(
                    invoice_id=invoice.id, service_id=invoice.service_id, user_id=invoice.user_id
                )
            ),
            metadata=self._metadata(invoice.merchant_id),
            timeout=self._deadline,
        )

    async def close(self) -> None:
        await self._channel.close()

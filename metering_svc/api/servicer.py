"""billing.metering.v1.MeteringService: translates, calls one use case, translates back."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from metering_svc.api import translate
from metering_svc.domain.model import EventOutcome
from metering_svc.service_layer import (
    entitlements,
    events,
    ingestion,
    meters,
    replicas,
    summaries,
)
from metering_svc.service_layer.group_commit import GroupCommitter
from metering_svc.service_layer.unit_of_work import Metering
from service_kit.errors import InvalidArgument
from service_kit.idempotency import RequestKey
from service_kit.proto_time import from_timestamp
from service_kit.tenancy import merchant_id

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class MeteringServicer(metering_pb2_grpc.MeteringServiceServicer):
    def __init__(self, metering: Metering) -> None:
        self._metering = metering
        self._single_events = GroupCommitter(metering)

    async def CreateMeter(self, request: pb.CreateMeterRequest, context: Context) -> pb.Meter:
        meter = meters.new_meter(
            merchant_id=merchant_id(context),
            service_id=request.meter.service_id,
            event_key=request.meter.event_key,
            aggregation=translate.aggregation_from_proto(request.meter.aggregation),
            unique_property=request.meter.unique_property,
            display_name=request.meter.display_name,
            now=self._metering.clock.now(),
        )
        key = RequestKey.of("CreateMeter", request, request.request_id)
        created = await meters.create_meter(self._metering, meter, key)
        return translate.meter_to_proto(created)

    async def GetMeter(self, request: pb.GetMeterRequest, context: Context) -> pb.Meter:
        meter = await meters.get_meter(self._metering, merchant_id(context), request.id)
        return translate.meter_to_proto(meter)

    async def ListMeters(
        self, request: pb.ListMetersRequest, context: Context
    ) -> pb.ListMetersResponse:
        page, token = await meters.list_meters(
            self._metering,
            merchant_id(context),
            request.service_id,
            request.page_size,
            request.page_token,
        )
        return pb.ListMetersResponse(
            meters=[translate.meter_to_proto(m) for m in page], next_page_token=token
        )

    async def RecordUsageEvent(
        self, request: pb.RecordUsageEventRequest, context: Context
    ) -> pb.RecordUsageEventResponse:
        if not request.HasField("event"):
            raise InvalidArgument("event is required", field="event")
        result = await self._single_events.record(
            merchant_id(context), translate.draft_from_proto(request.event)
        )
        if result.error is not None:
            raise result.error
        return pb.RecordUsageEventResponse(
            event_id=result.event_id,
            outcome=translate.result_to_proto(result).outcome,
        )

    async def BatchRecordUsageEvents(
        self, request: pb.BatchRecordUsageEventsRequest, context: Context
    ) -> pb.BatchRecordUsageEventsResponse:
        results = await ingestion.record_usage_events(
            self._metering,
            merchant_id(context),
            [translate.draft_from_proto(event) for event in request.events],
        )
        outcomes = [result.outcome for result in results]
        return pb.BatchRecordUsageEventsResponse(
            results=[translate.result_to_proto(result) for result in results],
            accepted_count=outcomes.count(EventOutcome.ACCEPTED),
            duplicate_count=outcomes.count(EventOutcome.DUPLICATE),
            rejected_count=outcomes.count(EventOutcome.REJECTED),
        )

    async def StreamUsageEvents(
        self, request_iterator: AsyncIterator[pb.StreamUsageEventsRequest], context: Context
    ) -> AsyncIterator[pb.StreamUsageEventsResponse]:
        """Commits events in groups: whatever has arrived, up to stream_group_size, goes into one
        transaction; each event is answered, in order, once its group committed."""
        merchant = merchant_id(context)
        group_size = self._metering.settings.stream_group_size
        inbox: asyncio.Queue[pb.UsageEventInput | None] = asyncio.Queue(maxsize=4 * group_size)

        async def receive() -> None:
            try:
                async for message in request_iterator:
                    await inbox.put(message.event)
            finally:
                await inbox.put(None)

        receiver = asyncio.create_task(receive())
        offset = 0
        try:
            finished = False
            while not finished:
                group = [await inbox.get()]
                while len(group) < group_size and not inbox.empty():
                    group.append(inbox.get_nowait())
                if group[-1] is None:
                    finished = True
                    group.pop()
                if not group:
                    continue
                drafts = [translate.draft_from_proto(event) for event in group if event is not None]
                for result in await ingestion.record_usage_events(self._metering, merchant, drafts):
                    message = translate.result_to_proto(result)
                    message.index = offset + result.index
                    yield pb.StreamUsageEventsResponse(result=message)
                offset += len(drafts)
            # The request stream ended: at its end, or at a message that could not be read,
            # which then fails the call.
            await receiver
        finally:
            receiver.cancel()

    async def ListUsageEvents(
        self, request: pb.ListUsageEventsRequest, context: Context
    ) -> pb.ListUsageEventsResponse:
        page, token = await events.list_usage_events(
            self._metering,
            merchant_id(context),
            request.subscription_id,
            event_key=request.event_key,
            start_time=from_timestamp(request.start_time)
            if request.HasField("start_time")
            else None,
            end_time=from_timestamp(request.end_time) if request.HasField("end_time") else None,
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListUsageEventsResponse(
            events=[translate.stored_event_to_proto(e) for e in page], next_page_token=token
        )

    async def CancelUsageEvent(
        self, request: pb.CancelUsageEventRequest, context: Context
    ) -> pb.UsageEvent:
        canceled = await events.cancel_usage_event(
            self._metering,
            merchant_id(context),
            request.id,
            request.reason,
            subscription_id=request.subscription_id,
            idempotency_key=request.idempotency_key,
        )
        return translate.stored_event_to_proto(canceled)

    async def GetUsageSummary(
        self, request: pb.GetUsageSummaryRequest, context: Context
    ) -> pb.GetUsageSummaryResponse:
        query = translate.summary_query_from_proto(request)
        found = await summaries.usage_summary(self._metering, merchant_id(context), query)
        return translate.summary_response_to_proto(query, found)

    async def BatchGetUsageSummaries(
        self, request: pb.BatchGetUsageSummariesRequest, context: Context
    ) -> pb.BatchGetUsageSummariesResponse:
        queries = [translate.summary_query_from_proto(r) for r in request.requests]
        found = await summaries.usage_summaries(self._metering, merchant_id(context), queries)
        return pb.BatchGetUsageSummariesResponse(
            responses=[
                translate.summary_response_to_proto(query, answer)
                for query, answer in zip(queries, found, strict=True)
            ]
        )

    async def CheckEntitlement(
        self, request: pb.CheckEntitlementRequest, context: Context
    ) -> pb.CheckEntitlementResponse:
        entitlement = await entitlements.check_entitlement(
            self._metering,
            merchant_id(context),
            request.subscription_id,
            feature=request.feature,
            event_key=request.event_key,
            quantity=request.quantity,
        )
        return translate.entitlement_to_proto(entitlement)

    async def UpsertSubscriptionState(
        self, request: pb.UpsertSubscriptionStateRequest, context: Context
    ) -> pb.SubscriptionState:
        state = translate.subscription_state_from_proto(request.state, merchant_id(context))
        stored = await replicas.upsert_subscription_state(self._metering, state)
        return translate.subscription_state_to_proto(stored)

    async def BatchUpsertSubscriptionStates(
        self, request: pb.BatchUpsertSubscriptionStatesRequest, context: Context
    ) -> pb.BatchUpsertSubscriptionStatesResponse:
        merchant = merchant_id(context)
        states = [
            translate.subscription_state_from_proto(state, merchant, f"states[{index}].")
            for index, state in enumerate(request.states)
        ]
        stored = await replicas.upsert_subscription_states(self._metering, states)
        return pb.BatchUpsertSubscriptionStatesResponse(
            states=[translate.subscription_state_to_proto(state) for state in stored]
        )

    async def UpsertInvoiceReference(
        self, request: pb.UpsertInvoiceReferenceRequest, context: Context
    ) -> pb.InvoiceReference:
        reference = translate.invoice_reference_from_proto(request.invoice, merchant_id(context))
        stored = await replicas.upsert_invoice_reference(self._metering, reference)
        return translate.invoice_reference_to_proto(stored)

    async def BatchUpsertInvoiceReferences(
        self, request: pb.BatchUpsertInvoiceReferencesRequest, context: Context
    ) -> pb.BatchUpsertInvoiceReferencesResponse:
        merchant = merchant_id(context)
        references = [
            translate.invoice_reference_from_proto(reference, merchant)
            for reference in request.references
        ]
        stored = await replicas.upsert_invoice_references(self._metering, references)
        return pb.BatchUpsertInvoiceReferencesResponse(
            references=[translate.invoice_reference_to_proto(reference) for reference in stored]
        )

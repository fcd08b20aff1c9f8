"""Single usage events posted at the same time reach metering together: the events of a merchant
that arrive while a BatchRecordUsageEvents call is in flight leave together in the next one
(service_kit/coalescing.py; metering does the same for its own unary RPC). A request is still
answered only once its own event is durably committed, with its own outcome or error: the events
of a batch are independent, so a bad event costs the others nothing."""

import grpc

from billing.metering.v1 import metering_pb2 as pb
from gateway.backends import Backends
from gateway.errors import from_status
from service_kit.coalescing import Coalescer

MAX_BATCH = 1_000


class UsageBatcher:
    def __init__(self, backends: Backends) -> None:
        async def send(
            merchant_id: str, events: list[pb.UsageEventInput]
        ) -> list[pb.UsageEventResult]:
            request = pb.BatchRecordUsageEventsRequest(events=events)
            response = await backends.call(
                backends.metering.BatchRecordUsageEvents, request, merchant_id
            )
            return list(response.results)

        self._batches: Coalescer[pb.UsageEventInput, pb.UsageEventResult] = Coalescer(
            send, MAX_BATCH
        )

    async def record(
        self, merchant_id: str, event: pb.UsageEventInput
    ) -> pb.RecordUsageEventResponse:
        """The event's outcome once committed; a rejected event raises its ApiError."""
        result = await self._batches.submit(merchant_id, event)
        if result.outcome == pb.USAGE_EVENT_OUTCOME_REJECTED:
            error = result.error
            raise from_status(grpc.StatusCode[error.code], error.message, error.field)
        return pb.RecordUsageEventResponse(event_id=result.event_id, outcome=result.outcome)

"""Single usage events posted at the same time reach metering together.

Each merchant has at most one BatchRecordUsageEvents call in flight; the events posted while it
runs wait and leave together in the next one (group commit, as metering does for its own unary
RPC). Nothing waits on a timer: a lone event leaves at the next turn of the event loop. A request
is still answered only once its own event is durably committed, with its own outcome or error:
the events of a batch are independent, so a bad event costs the others nothing."""

import asyncio
import contextvars
from dataclasses import dataclass

import grpc

from billing.metering.v1 import metering_pb2 as pb
from gateway.backends import Backends
from gateway.errors import from_status

MAX_BATCH = 1_000


@dataclass(frozen=True)
class _Waiting:
    event: pb.UsageEventInput
    answer: asyncio.Future[pb.UsageEventResult]


class UsageBatcher:
    def __init__(self, backends: Backends) -> None:
        self._backends = backends
        self._waiting: dict[str, list[_Waiting]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def record(
        self, merchant_id: str, event: pb.UsageEventInput
    ) -> pb.RecordUsageEventResponse:
        """The event's outcome once committed; a rejected event raises its ApiError."""
        answer: asyncio.Future[pb.UsageEventResult] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(merchant_id, []).append(_Waiting(event, answer))
        if merchant_id not in self._senders:
            # A fresh context: the batch belongs to no single request (nor its request id).
            self._senders[merchant_id] = asyncio.create_task(
                self._send(merchant_id), context=contextvars.Context()
            )
        result = await answer
        if result.outcome == pb.USAGE_EVENT_OUTCOME_REJECTED:
            error = result.error
            raise from_status(grpc.StatusCode[error.code], error.message, error.field)
        return pb.RecordUsageEventResponse(event_id=result.event_id, outcome=result.outcome)

    async def _send(self, merchant_id: str) -> None:
        try:
            while waiting := self._waiting.pop(merchant_id, None):
                if len(waiting) > MAX_BATCH:
                    self._waiting[merchant_id] = waiting[MAX_BATCH:]
                    waiting = waiting[:MAX_BATCH]
                await self._send_batch(merchant_id, waiting)
        finally:
            del self._senders[merchant_id]

    async def _send_batch(self, merchant_id: str, waiting: list[_Waiting]) -> None:
        request = pb.BatchRecordUsageEventsRequest(events=[w.event for w in waiting])
        try:
            response = await self._backends.call(
                self._backends.metering.BatchRecordUsageEvents, request, merchant_id
            )
            results = list(zip(waiting, response.results, strict=True))
        except Exception as error:  # an ApiError, or a bug: every request of the batch answers it
            for w in waiting:
                if not w.answer.done():
                    w.answer.set_exception(error)
            return
        for w, result in results:
            if not w.answer.done():
                w.answer.set_result(result)

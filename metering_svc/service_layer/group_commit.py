"""Group commit for single events: concurrent RecordUsageEvent calls of a merchant share one
transaction, and each is answered once that transaction has committed.

While a transaction is in flight, newly arriving events wait and form the next group, so an idle
service adds no latency and a busy one commits many events per transaction (and updates each
hourly rollup row once per group instead of once per event)."""

import asyncio
from dataclasses import replace

from metering_svc.domain.model import EventResult, UsageEventDraft
from metering_svc.service_layer.ingestion import record_usage_events
from metering_svc.service_layer.unit_of_work import Metering

Waiter = tuple[UsageEventDraft, asyncio.Future[EventResult]]


class GroupCommitter:
    def __init__(self, metering: Metering, max_group: int = 1_000) -> None:
        self._metering = metering
        self._max_group = max_group
        self._waiting: dict[str, list[Waiter]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}

    async def record(self, merchant_id: str, draft: UsageEventDraft) -> EventResult:
        """The event's result once its group committed (or the group's failure)."""
        answer: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(merchant_id, []).append((draft, answer))
        if merchant_id not in self._flushers:
            self._flushers[merchant_id] = asyncio.create_task(self._flush(merchant_id))
        return await answer

    async def _flush(self, merchant_id: str) -> None:
        try:
            while waiting := self._waiting.pop(merchant_id, None):
                group, rest = waiting[: self._max_group], waiting[self._max_group :]
                if rest:
                    self._waiting[merchant_id] = rest + self._waiting.get(merchant_id, [])
                await self._commit(merchant_id, group)
        finally:
            del self._flushers[merchant_id]

    async def _commit(self, merchant_id: str, group: list[Waiter]) -> None:
        try:
            results = await record_usage_events(
                self._metering, merchant_id, [draft for draft, _ in group]
            )
        except Exception as error:
            for _, answer in group:
                if not answer.done():
                    answer.set_exception(error)
            return
        for (_, answer), result in zip(group, results, strict=True):
            if not answer.done():
                answer.set_result(replace(result, index=0))

"""Group commit for single events: concurrent RecordUsageEvent calls of a merchant share one
transaction (service_kit/coalescing.py), and each is answered once that transaction has
committed, updating each hourly rollup row once per group instead of once per event."""

from dataclasses import replace

from metering_svc.domain.model import EventResult, UsageEventDraft
from metering_svc.service_layer.ingestion import record_usage_events
from metering_svc.service_layer.unit_of_work import Metering
from service_kit.coalescing import Coalescer


class GroupCommitter:
    def __init__(self, metering: Metering, max_group: int = 1_000) -> None:
        async def commit(merchant_id: str, drafts: list[UsageEventDraft]) -> list[EventResult]:
            results = await record_usage_events(metering, merchant_id, drafts)
            # Each caller sent one event: its result is at index 0 of its own request.
            return [replace(result, index=0) for result in results]

        self._groups: Coalescer[UsageEventDraft, EventResult] = Coalescer(commit, max_group)

    async def record(self, merchant_id: str, draft: UsageEventDraft) -> EventResult:
        """The event's result once its group committed (or the group's failure)."""
        return await self._groups.submit(merchant_id, draft)

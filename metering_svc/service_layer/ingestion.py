"""Recording usage events: validate, deduplicate, store and roll up, all in one transaction.

An event is acknowledged only after that transaction commits. A bad event is rejected on its own;
its siblings in the batch are stored.
"""

from collections.abc import Sequence

from metering_svc.adapters.partitions import month_of
from metering_svc.domain.deduplication import outcomes, unique_in_batch
from metering_svc.domain.model import EventOutcome, EventResult, UsageEvent, UsageEventDraft
from metering_svc.domain.validation import check_invoice, check_subscription, validate_fields
from metering_svc.service_layer.unit_of_work import Metering
from metering_svc.service_layer.usage_limits import within_limits_and_credits
from service_kit.errors import DomainError, InvalidArgument
from service_kit.ids import new_ids


async def record_usage_events(
    metering: Metering, merchant_id: str, drafts: Sequence[UsageEventDraft]
) -> list[EventResult]:
    """One result per draft, in order: ACCEPTED, DUPLICATE (with the first event's id), or
    REJECTED (with the error)."""
    if not drafts:
        raise InvalidArgument("at least one event is required", field="events")
    if len(drafts) > metering.settings.max_batch_size:
        raise InvalidArgument(
            f"at most {metering.settings.max_batch_size} events per call", field="events"
        )
    now = metering.clock.now()
    results: dict[int, EventResult] = {}
    candidates: list[tuple[int, UsageEvent]] = []
    event_ids = new_ids("evt", len(drafts))
    for index, (draft, event_id) in enumerate(zip(drafts, event_ids, strict=True)):
        try:
            event = validate_fields(
                draft,
                event_id=event_id,
                merchant_id=merchant_id,
                now=now,
            )
        except DomainError as error:
            results[index] = EventResult(index, EventOutcome.REJECTED, error=error)
        else:
            candidates.append((index, event))

    async with metering.unit_of_work() as uow:
        subscriptions = await uow.replicas.subscriptions_for_ingestion(
            merchant_id, {event.subscription_id for _, event in candidates}
        )
        invoices = await uow.replicas.invoices(
            merchant_id, {event.invoice_id for _, event in candidates if event.invoice_id}
        )
        valid: list[tuple[int, UsageEvent]] = []
        for index, event in candidates:
            subscription = subscriptions.get(event.subscription_id)
            if subscription and subscription.test_clock_time and not drafts[index].occurred_at:
                event = event._replace(occurred_at=subscription.now(now))
            try:
                check_subscription(
                    event, subscription, now=now, max_clock_skew=metering.settings.max_clock_skew
                )
                check_invoice(event, invoices.get(event.invoice_id))
            except DomainError as error:
                results[index] = EventResult(index, EventOutcome.REJECTED, error=error)
            else:
                valid.append((index, event))
        within = await within_limits_and_credits(uow, merchant_id, subscriptions, valid, results)
        refused_by_limit, valid = len(valid) - len(within), within

        # Before this transaction takes any lock that another ingestion could wait for: the
        # partition DDL (own connection) waits for ingestions in flight.
        await metering.partitions.ensure({month_of(event.occurred_at) for _, event in valid})

        batch = unique_in_batch(valid)
        recorded_before = await uow.events.store_new(
            merchant_id, [event for _, event in batch.fresh], now
        )
        for result in outcomes(batch, recorded_before):
            results[result.index] = result
        await uow.commit()
    metering.entitlements.changed({event.subscription_id for _, event in batch.fresh})
    metering.metrics.events_recorded(
        ingested=sum(r.outcome is EventOutcome.ACCEPTED for r in results.values()),
        deduplicated=sum(r.outcome is EventOutcome.DUPLICATE for r in results.values()),
        refused_by_limit=refused_by_limit,
    )
    return [results[index] for index in range(len(drafts))]

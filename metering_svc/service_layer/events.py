"""Reading and canceling stored usage events."""

from datetime import datetime

from metering_svc.domain.model import StoredUsageEvent, SubscriptionStatus
from metering_svc.service_layer.unit_of_work import Metering
from service_kit import pagination
from service_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from service_kit.identifiers import require_identifier

MAX_CANCEL_REASON = 500


async def list_usage_events(
    metering: Metering,
    merchant_id: str,
    subscription_id: str,
    *,
    event_key: str,
    start_time: datetime | None,
    end_time: datetime | None,
    size: int,
    token: str,
) -> tuple[list[StoredUsageEvent], str]:
    require_identifier(subscription_id, "subscription_id")
    if event_key:
        require_identifier(event_key, "event_key")
    limit = pagination.page_size(size)
    position = pagination.decode_token(token, 2)
    after = (datetime.fromisoformat(position[0]), int(position[1])) if position else None
    async with metering.unit_of_work() as uow:
        events = await uow.events.list(
            merchant_id,
            subscription_id,
            event_key=event_key or None,
            start_time=start_time,
            end_time=end_time,
            after=after,
            limit=limit + 1,
        )
    page, more = events[:limit], len(events) > limit
    next_token = ""
    if more:
        occurred_at, seq = page[-1].position
        next_token = pagination.encode_token([occurred_at.isoformat(), seq])
    return page, next_token


async def cancel_usage_event(
    metering: Metering,
    merchant_id: str,
    event_id: str,
    reason: str,
    *,
    subscription_id: str = "",
    idempotency_key: str = "",
) -> StoredUsageEvent:
    """Takes an event out of every summary; its record stays. Refused once its period is closed,
    and once the subscription ended (its final invoice billed every event left).
    The event is named by its id, or by the idempotency key it was recorded with for its
    subscription."""
    if idempotency_key and event_id:
        raise InvalidArgument("name the event by id or by idempotency_key, not both", field="id")
    if idempotency_key:
        require_identifier(subscription_id, "subscription_id")
    else:
        require_identifier(event_id, "id")
    if len(reason) > MAX_CANCEL_REASON:
        raise InvalidArgument(
            f"reason is longer than {MAX_CANCEL_REASON} characters", field="reason"
        )
    async with metering.unit_of_work() as uow:
        if idempotency_key:
            found = await uow.events.id_of_key(merchant_id, subscription_id, idempotency_key)
            if found is None:
                raise NotFound(
                    f"no usage event of subscription {subscription_id} was recorded with "
                    "this idempotency key",
                    field="idempotency_key",
                )
            event_id = found
        stored = await uow.events.find(merchant_id, event_id)
        if stored is None:
            raise NotFound(f"usage event {event_id} not found", field="id")
        if stored.cancel_time is not None:
            return stored
        subscriptions = await uow.replicas.subscriptions_for_ingestion(
            merchant_id, {stored.event.subscription_id}
        )
        subscription = subscriptions.get(stored.event.subscription_id)
        if subscription and subscription.status is SubscriptionStatus.CANCELED:
            raise FailedPrecondition(
                "the subscription is canceled and its final invoice billed the event, which can "
                "no longer be canceled",
                field="id",
            )
        if subscription and subscription.status is SubscriptionStatus.PAUSED:
            raise FailedPrecondition(
                "the subscription is paused: its pause's invoice billed the events before it, "
                "and none is canceled until it resumes",
                field="id",
            )
        if subscription and stored.event.occurred_at < subscription.current_period_start:
            raise FailedPrecondition(
                "the event belongs to a closed billing period and can no longer be canceled",
                field="id",
            )
        await uow.events.cancel(stored, reason, metering.clock.now())
        canceled = await uow.events.find(merchant_id, event_id)
        await uow.commit()
    metering.entitlements.changed({stored.event.subscription_id})
    assert canceled is not None
    return canceled

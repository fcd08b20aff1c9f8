"""Usage events, and the usage of a subscription they add up to."""

from typing import Annotated, Any

from fastapi import Query

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.metering.v1 import metering_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.errors import ApiError, camel
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import (
    Moment,
    UsageEventBatch,
    UsageEventCancel,
    UsageEventCancelByKey,
    UsageEventIn,
    text,
)
from service_kit.proto_time import to_timestamp

router = merchant_router("usage events")
_WINDOW_PARAMS = {"startTime": "from", "endTime": "to"}


def event_message(event: UsageEventIn) -> pb.UsageEventInput:
    message = pb.UsageEventInput(
        service_id=event.service_id,
        subscription_id=event.subscription_id,
        user_id=event.user_id,
        event_key=event.event_key,
        quantity=text(event.quantity),
        invoice_id=event.invoice_id,
        idempotency_key=event.idempotency_key,
        properties=event.properties,
    )
    if event.occurred_at is not None:
        message.occurred_at.CopyFrom(to_timestamp(event.occurred_at))
    return message


@router.post("/usage-events", **r.documented(r.UsageEventRecorded, 404, 409))
async def record_usage_event(merchant: Merchant, payload: UsageEventIn) -> Any:
    """Acknowledged once durably committed; a repeated idempotencyKey answers `duplicate`."""

    async def record() -> dict[str, Any]:
        event = event_message(payload)
        return to_json(await merchant.gateway.usage.record(merchant.merchant.id, event))

    return await merchant.created(record)


@router.post("/usage-events/batch", **r.documented(r.UsageEventBatchRecorded, 404, 409))
async def record_usage_events(merchant: Merchant, payload: UsageEventBatch) -> Any:
    """Each event gets its own result; a bad event does not cost the others."""
    limit = merchant.gateway.settings.max_batch_events
    if len(payload.events) > limit:
        raise ApiError(
            400,
            "invalid_request_error",
            "batch_too_large",
            f"at most {limit} events per batch",
            "events",
        )

    async def record() -> dict[str, Any]:
        stub = merchant.gateway.backends.metering
        request = pb.BatchRecordUsageEventsRequest(
            events=[event_message(e) for e in payload.events]
        )
        return batch_json(await merchant.call(stub.BatchRecordUsageEvents, request))

    return await merchant.created(record)


def batch_json(response: pb.BatchRecordUsageEventsResponse) -> dict[str, Any]:
    """The batch's results, each rejected event's field in the request's spelling ("occurredAt"),
    as a single event's error names it."""
    data = to_json(response)
    for result in data["results"]:
        error = result.get("error")
        if error and error.get("field"):
            error["field"] = camel(error["field"])
    return data


@router.post("/usage-events/{event_id}/cancel", **r.documented(r.UsageEvent, 404, 409))
async def cancel_usage_event(merchant: Merchant, event_id: str, payload: UsageEventCancel) -> Any:
    """Corrects a usage event: it leaves every summary (its record stays, with `cancelTime`).
    Refused (409) once its billing period is closed; canceling it again changes nothing."""

    async def cancel() -> dict[str, Any]:
        request = pb.CancelUsageEventRequest(id=event_id, reason=payload.reason)
        stub = merchant.gateway.backends.metering
        return to_json(await merchant.call(stub.CancelUsageEvent, request))

    return await merchant.created(cancel)


@router.post("/usage-events/cancel", **r.documented(r.UsageEvent, 404, 409))
async def cancel_usage_event_by_key(merchant: Merchant, payload: UsageEventCancelByKey) -> Any:
    """Cancels the event recorded with this idempotencyKey for the subscription, as
    `POST /usage-events/{eventId}/cancel` does: for a client that kept its keys, not ids."""

    async def cancel() -> dict[str, Any]:
        request = pb.CancelUsageEventRequest(
            subscription_id=payload.subscription_id,
            idempotency_key=payload.idempotency_key,
            reason=payload.reason,
        )
        stub = merchant.gateway.backends.metering
        return to_json(await merchant.call(stub.CancelUsageEvent, request))

    return await merchant.created(cancel)


@router.get("/usage-events", **r.documented(r.Page[r.UsageEvent], 404))
async def list_usage_events(
    merchant: Merchant,
    subscription_id: Annotated[str, Query(alias="subscriptionId", min_length=1, max_length=128)],
    event_key: Annotated[str, Query(alias="eventKey", max_length=128)] = "",
    start: Annotated[Moment | None, Query(alias="from")] = None,
    end: Annotated[Moment | None, Query(alias="to")] = None,
    limit: Limit = 10,
    starting_after: StartingAfter = "",
) -> Any:
    """Oldest first; `from` (inclusive) and `to` (exclusive) bound when they occurred."""
    stub = merchant.gateway.backends.metering
    request = pb.ListUsageEventsRequest(
        subscription_id=subscription_id,
        event_key=event_key,
        page_size=limit,
        page_token=starting_after,
    )
    if start is not None:
        request.start_time.CopyFrom(to_timestamp(start))
    if end is not None:
        request.end_time.CopyFrom(to_timestamp(end))
    found = await merchant.call(stub.ListUsageEvents, request)
    return page([to_json(e) for e in found.events], found.next_page_token)


@router.get("/subscriptions/{subscription_id}/usage", **r.documented(r.UsageSummaries, 404))
async def usage_summary(
    merchant: Merchant,
    subscription_id: str,
    start: Annotated[Moment | None, Query(alias="from")] = None,
    end: Annotated[Moment | None, Query(alias="to")] = None,
    event_key: Annotated[str, Query(alias="eventKey", max_length=128)] = "",
) -> Any:
    """The usage over [`from`, `to`); a bound left out is the current billing period's."""
    request = pb.GetUsageSummaryRequest(subscription_id=subscription_id, event_key=event_key)
    if start is None or end is None:
        subscription = await merchant.call(
            merchant.gateway.backends.invoicing.GetSubscription,
            ipb.GetSubscriptionRequest(id=subscription_id),
        )
        request.start_time.CopyFrom(subscription.current_period_start)
        request.end_time.CopyFrom(subscription.current_period_end)
    if start is not None:
        request.start_time.CopyFrom(to_timestamp(start))
    if end is not None:
        request.end_time.CopyFrom(to_timestamp(end))
    try:
        return await merchant.answer(merchant.gateway.backends.metering.GetUsageSummary, request)
    except ApiError as error:
        # Metering names its window's fields; the request named them `from` and `to`.
        error.param = _WINDOW_PARAMS.get(error.param, error.param)
        raise

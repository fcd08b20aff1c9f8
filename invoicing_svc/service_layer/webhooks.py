"""Webhook endpoints, and delivering events to them: signed, retried with backoff until the
retry horizon, every attempt recorded."""

import asyncio
import base64
import os
from datetime import timedelta

from invoicing_svc.adapters.webhook_store import WebhookDelivery, WebhookEndpoint
from invoicing_svc.domain.urls import require_http_url
from invoicing_svc.service_layer.unit_of_work import Invoicing
from service_kit import pagination
from service_kit.errors import InvalidArgument, NotFound
from service_kit.idempotency import RequestKey
from service_kit.outbox import backoff

EVENT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "subscription.created",
        "subscription.updated",
        "subscription.canceled",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "settlement.confirmed",
        "settlement.failed",
    }
)
DELIVERY_BATCH = 50


async def create_webhook_endpoint(
    invoicing: Invoicing, endpoint: WebhookEndpoint, request: RequestKey | None
) -> WebhookEndpoint:
    """Registers the endpoint with a new signing secret, returned only here."""
    require_http_url(endpoint.url, "endpoint.url")
    if not endpoint.event_types:
        raise InvalidArgument("endpoint.event_types is required", field="endpoint.event_types")
    unknown = set(endpoint.event_types) - EVENT_TYPES - {"*"}
    if unknown:
        raise InvalidArgument(
            f"unknown event types: {', '.join(sorted(unknown))}", field="endpoint.event_types"
        )
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, endpoint.merchant_id, request)
        if first_id is not None:
            stored = await uow.webhooks.endpoint(endpoint.merchant_id, first_id)
            assert stored is not None
            return stored
        secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        created = WebhookEndpoint(
            endpoint.id,
            endpoint.merchant_id,
            endpoint.url,
            endpoint.event_types,
            secret,
            endpoint.create_time,
        )
        await uow.webhooks.add_endpoint(created)
        await uow.idempotency.remember(uow.session, endpoint.merchant_id, request, created.id)
        await uow.commit()
    return created


async def list_webhook_endpoints(
    invoicing: Invoicing, merchant_id: str, size: int, token: str
) -> tuple[list[WebhookEndpoint], str]:
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        found = await uow.webhooks.endpoints(
            merchant_id, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda e: (e.create_time, e.id))


async def list_webhook_deliveries(
    invoicing: Invoicing, merchant_id: str, endpoint_id: str, size: int, token: str
) -> tuple[list[WebhookDelivery], str]:
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        if await uow.webhooks.endpoint(merchant_id, endpoint_id) is None:
            raise NotFound(f"webhook endpoint {endpoint_id} not found", field="endpoint_id")
        found = await uow.webhooks.deliveries(
            merchant_id, endpoint_id, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda d: (d.create_time, d.id))


async def deliver_due_webhooks(invoicing: Invoicing) -> int:
    """Sends every due delivery once (concurrently), records each attempt, and schedules the
    next attempt of failures. Returns how many were sent successfully."""
    settings = invoicing.settings
    now = invoicing.clock.now()
    # The lease outlasts the slowest send, so no other worker takes a delivery meanwhile.
    lease = timedelta(seconds=4 * settings.webhook_timeout_seconds)
    async with invoicing.unit_of_work() as uow:
        claimed = await uow.webhooks.claim_due(now, lease, DELIVERY_BATCH)
        await uow.commit()
    if not claimed:
        return 0
    outcomes = await asyncio.gather(
        *(invoicing.webhook_sender.send(d.url, d.secret, d.event_id, d.body, now) for d in claimed)
    )
    async with invoicing.unit_of_work() as uow:
        for delivery, outcome in zip(claimed, outcomes, strict=True):
            if outcome.succeeded:
                status = "SUCCEEDED"
            elif now - delivery.create_time >= settings.webhook_retry_horizon:
                status = "FAILED"
            else:
                status = "PENDING"
            await uow.webhooks.record_attempt(
                delivery,
                attempt_time=now,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                status=status,
                next_attempt_time=now + backoff(delivery.attempt_count + 1),
            )
        await uow.commit()
    return sum(outcome.succeeded for outcome in outcomes)

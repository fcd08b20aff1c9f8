"""Webhook endpoints, and delivering events to them: signed, retried with backoff until the
retry horizon, every attempt recorded, merchants and endpoints served in fair turns, an endpoint
failing for too long disabled."""

import asyncio
import base64
import os
from datetime import timedelta

import structlog

from invoicing_svc.adapters.webhook_store import DueDelivery, WebhookDelivery, WebhookEndpoint
from invoicing_svc.domain.urls import require_webhook_url
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
        "invoice.held",
        "invoice.paid",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "settlement.confirmed",
        "settlement.failed",
        "webhook_endpoint.disabled",
    }
)

log = structlog.get_logger()


async def create_webhook_endpoint(
    invoicing: Invoicing, endpoint: WebhookEndpoint, request: RequestKey | None
) -> WebhookEndpoint:
    """Registers the endpoint with a new signing secret, returned only here."""
    settings = invoicing.settings
    require_webhook_url(
        endpoint.url,
        "endpoint.url",
        allow_http=settings.webhook_allow_http,
        allow_private=settings.webhook_allow_private_targets,
    )
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


async def _claim(invoicing: Invoicing, limit: int) -> list[DueDelivery]:
    settings = invoicing.settings
    # The lease outlasts the whole send (bounded by the timeout), so no other worker takes it.
    lease = timedelta(seconds=4 * settings.webhook_timeout_seconds)
    async with invoicing.unit_of_work() as uow:
        claimed = await uow.webhooks.claim_due(
            invoicing.clock.now(), lease, limit, settings.webhook_endpoint_concurrency
        )
        await uow.commit()
    return claimed


async def _deliver(invoicing: Invoicing, delivery: DueDelivery) -> bool:
    """One attempt, recorded as soon as it lands: a success stops the endpoint's failure clock,
    a failure starts it or, once it has run long enough, disables the endpoint and tells the
    merchant's other endpoints. Returns whether it succeeded."""
    settings = invoicing.settings
    now = invoicing.clock.now()
    outcome = await invoicing.webhook_sender.send(
        delivery.url, delivery.secret, delivery.event_id, delivery.body, now
    )
    if outcome.succeeded:
        status = "SUCCEEDED"
    elif now - delivery.create_time >= settings.webhook_retry_horizon:
        status = "FAILED"
    else:
        status = "PENDING"
    async with invoicing.unit_of_work() as uow:
        await uow.webhooks.lock_endpoint(delivery.endpoint_id)
        await uow.webhooks.record_attempt(
            delivery,
            attempt_time=now,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            status=status,
            next_attempt_time=now + backoff(delivery.attempt_count + 1),
        )
        if outcome.succeeded:
            await uow.webhooks.endpoint_succeeded(delivery.endpoint_id)
        else:
            disabled = await uow.webhooks.endpoint_failed(
                delivery.endpoint_id, now, settings.webhook_disable_after
            )
            if disabled is not None:
                await uow.emit(disabled.merchant_id, "webhook_endpoint.disabled", disabled, now)
        await uow.commit()
    return outcome.succeeded


async def deliver_due_webhooks(invoicing: Invoicing) -> int:
    """One pass: claims up to INVOICING_WEBHOOK_CONCURRENCY due deliveries in fair turns, sends
    them concurrently and records each attempt. Returns how many were sent successfully."""
    claimed = await _claim(invoicing, invoicing.settings.webhook_concurrency)
    return sum(await asyncio.gather(*(_deliver(invoicing, d) for d in claimed)))


async def keep_delivering_webhooks(invoicing: Invoicing) -> None:
    """The webhook worker: keeps up to INVOICING_WEBHOOK_CONCURRENCY sends in flight and claims
    more whenever one lands, so a slow endpoint holds only its own sends, never a whole pass.
    A failure is logged and the work goes on. Cancel to stop."""
    capacity = invoicing.settings.webhook_concurrency
    interval = invoicing.settings.poll_interval_seconds
    sending: set[asyncio.Task[bool]] = set()
    try:
        while True:
            claimed = []
            try:
                if len(sending) < capacity:
                    claimed = await _claim(invoicing, capacity - len(sending))
            except Exception as error:
                log.exception("background.failed", work="webhooks", error=str(error))
            sending.update(asyncio.create_task(_deliver(invoicing, d)) for d in claimed)
            if not sending:
                await asyncio.sleep(interval)
                continue
            # On at the first send landing, or after a poll interval for what falls due.
            done, sending = await asyncio.wait(
                sending, timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task.exception() is not None:
                    log.error("background.failed", work="webhooks", error=str(task.exception()))
    finally:
        for task in sending:
            task.cancel()

"""Webhook endpoints, and delivering events to them: signed, retried with backoff until the
retry horizon, every attempt recorded, merchants and endpoints served in fair turns, an endpoint
failing for too long disabled."""

import asyncio
import base64
import json
import os
from collections.abc import Collection
from dataclasses import replace
from datetime import timedelta

import structlog

from invoicing_svc.domain.urls import require_webhook_url
from invoicing_svc.domain.webhooks import (
    DeliveryStatus,
    DueDelivery,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit import pagination
from service_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from service_kit.idempotency import RequestKey
from service_kit.identifiers import require_identifier
from service_kit.ids import new_id
from service_kit.outbox import backoff

EVENT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "subscription.created",
        "subscription.updated",
        "subscription.canceled",
        "subscription.paused",
        "subscription.resumed",
        "subscription.trial_will_end",
        "discount.created",
        "discount.deleted",
        "invoice.created",
        "invoice.finalized",
        "invoice.held",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "mandate.created",
        "mandate.revoked",
        "settlement.confirmed",
        "settlement.failed",
        "webhook_endpoint.disabled",
        "usage.threshold_crossed",
        "credits.balance_low",
        "credits.exhausted",
    }
)

# Sent by SendTestWebhookEvent only, whatever the endpoint subscribes to.
TEST_EVENT = "webhook_endpoint.test"
MAX_DESCRIPTION = 500
UPDATABLE = frozenset({"url", "event_types", "description"})

log = structlog.get_logger()


def _require_url(invoicing: Invoicing, url: str) -> None:
    settings = invoicing.settings
    require_webhook_url(
        url,
        "endpoint.url",
        allow_http=settings.webhook_allow_http,
        allow_private=settings.webhook_allow_private_targets,
    )


def _require_event_types(event_types: tuple[str, ...]) -> None:
    if not event_types:
        raise InvalidArgument("endpoint.event_types is required", field="endpoint.event_types")
    unknown = set(event_types) - EVENT_TYPES - {"*"}
    if unknown:
        raise InvalidArgument(
            f"unknown event types: {', '.join(sorted(unknown))}", field="endpoint.event_types"
        )


def _require_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidArgument(
            f"endpoint.description is longer than {MAX_DESCRIPTION} characters",
            field="endpoint.description",
        )


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


async def create_webhook_endpoint(
    invoicing: Invoicing, endpoint: WebhookEndpoint, request: RequestKey | None
) -> WebhookEndpoint:
    """Registers the endpoint with a new signing secret, returned only here."""
    _require_url(invoicing, endpoint.url)
    _require_event_types(endpoint.event_types)
    _require_description(endpoint.description)
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, endpoint.merchant_id, request)
        if first_id is not None:
            stored = await uow.webhooks.endpoint(endpoint.merchant_id, first_id)
            assert stored is not None
            return stored
        created = replace(endpoint, secret=_new_secret())
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


async def _locked(
    uow: InvoicingUnitOfWork, merchant_id: str, endpoint_id: str, field: str = "id"
) -> WebhookEndpoint:
    require_identifier(endpoint_id, field)
    found = await uow.webhooks.endpoint(merchant_id, endpoint_id, lock=True)
    if found is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found", field=field)
    return found


async def update_webhook_endpoint(
    invoicing: Invoicing, merchant_id: str, changes: WebhookEndpoint, paths: Collection[str]
) -> WebhookEndpoint:
    """Sets the fields named in `paths` (url, event_types, description) to those of `changes`,
    each checked as on creation."""
    if not paths or set(paths) - UPDATABLE:
        raise InvalidArgument(
            "update_mask names one or more of url, event_types, description", field="update_mask"
        )
    if "url" in paths:
        _require_url(invoicing, changes.url)
    if "event_types" in paths:
        _require_event_types(changes.event_types)
    if "description" in paths:
        _require_description(changes.description)
    async with invoicing.unit_of_work() as uow:
        await _locked(uow, merchant_id, changes.id, "endpoint.id")
        changed = await uow.webhooks.change_endpoint(
            changes.id,
            url=changes.url if "url" in paths else None,
            event_types=changes.event_types if "event_types" in paths else None,
            description=changes.description if "description" in paths else None,
        )
        await uow.commit()
    return changed


async def set_webhook_endpoint_enabled(
    invoicing: Invoicing, merchant_id: str, endpoint_id: str, enabled: bool
) -> WebhookEndpoint:
    """Enables an endpoint (its failure clock starts again), or disables it: it is sent
    nothing, and its pending deliveries fail (retry them once it is enabled)."""
    async with invoicing.unit_of_work() as uow:
        await _locked(uow, merchant_id, endpoint_id)
        if enabled:
            changed = await uow.webhooks.enable_endpoint(endpoint_id)
        else:
            changed = await uow.webhooks.disable_endpoint(endpoint_id, invoicing.clock.now())
        await uow.commit()
    return changed


async def delete_webhook_endpoint(invoicing: Invoicing, merchant_id: str, endpoint_id: str) -> None:
    """The endpoint is sent nothing more and found no more; its pending deliveries fail."""
    async with invoicing.unit_of_work() as uow:
        await _locked(uow, merchant_id, endpoint_id)
        await uow.webhooks.disable_endpoint(endpoint_id, invoicing.clock.now(), delete=True)
        await uow.commit()


async def roll_webhook_endpoint_secret(
    invoicing: Invoicing, merchant_id: str, endpoint_id: str
) -> WebhookEndpoint:
    """A new signing secret, returned only here. The current one keeps signing every delivery
    beside it for INVOICING_WEBHOOK_SECRET_GRACE, so the receiver can switch without losing
    any; a secret rolled before that is dropped at once."""
    async with invoicing.unit_of_work() as uow:
        current = await _locked(uow, merchant_id, endpoint_id)
        changed = await uow.webhooks.change_endpoint(
            endpoint_id,
            secret=_new_secret(),
            previous_secret=current.secret,
            previous_secret_expire_time=invoicing.clock.now()
            + invoicing.settings.webhook_secret_grace,
        )
        await uow.commit()
    return changed


async def _enabled(uow: InvoicingUnitOfWork, merchant_id: str, endpoint_id: str) -> None:
    endpoint = await _locked(uow, merchant_id, endpoint_id, "endpoint_id")
    if endpoint.disable_time is not None:
        raise FailedPrecondition(
            f"webhook endpoint {endpoint_id} is disabled: enable it first", field="endpoint_id"
        )


async def _delivery(
    uow: InvoicingUnitOfWork, merchant_id: str, delivery_id: str
) -> WebhookDelivery:
    found = await uow.webhooks.delivery(merchant_id, delivery_id)
    assert found is not None
    return found


async def send_test_webhook_event(
    invoicing: Invoicing, merchant_id: str, endpoint_id: str
) -> WebhookDelivery:
    """A "webhook_endpoint.test" event for this endpoint only, delivered (and retried) as any
    other; returns its delivery, PENDING."""
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        await _enabled(uow, merchant_id, endpoint_id)
        event_id = new_id("msg")
        body = {"type": TEST_EVENT, "timestamp": now.isoformat(), "data": {"id": endpoint_id}}
        event = WebhookEvent(event_id, TEST_EVENT, json.dumps(body, separators=(",", ":")))
        delivery_id = await uow.webhooks.add_delivery(merchant_id, endpoint_id, event, now)
        delivery = await _delivery(uow, merchant_id, delivery_id)
        await uow.commit()
    return delivery


async def retry_webhook_delivery(
    invoicing: Invoicing, merchant_id: str, endpoint_id: str, delivery_id: str
) -> WebhookDelivery:
    """Makes a delivery PENDING and due now, whatever its status: a SUCCEEDED one is sent once
    more, a FAILED one tried again (once, if it is past its retry horizon)."""
    require_identifier(delivery_id, "delivery_id")
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        await _enabled(uow, merchant_id, endpoint_id)
        found = await uow.webhooks.delivery(merchant_id, delivery_id)
        if found is None or found.endpoint_id != endpoint_id:
            raise NotFound(f"webhook delivery {delivery_id} not found", field="delivery_id")
        if not await uow.webhooks.make_due(endpoint_id, delivery_id, now):
            raise FailedPrecondition(
                "an attempt of this delivery is in flight; retry after it", field="delivery_id"
            )
        delivery = await _delivery(uow, merchant_id, delivery_id)
        await uow.commit()
    return delivery


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
        delivery.url,
        delivery.secret,
        delivery.event_id,
        delivery.body,
        now,
        delivery.previous_secret,
    )
    if outcome.succeeded:
        status = DeliveryStatus.SUCCEEDED
    elif now - delivery.create_time >= settings.webhook_retry_horizon:
        status = DeliveryStatus.FAILED
    else:
        status = DeliveryStatus.PENDING
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

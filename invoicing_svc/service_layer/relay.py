"""What the outbox relay does with each topic, a batch of one merchant's messages at a time.
Every handler is idempotent, and sends the current state of what its messages name, once per
object however many messages name it."""

import json
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.catalog_store import CatalogStore
from invoicing_svc.adapters.credit_balance_store import CreditBalanceStore
from invoicing_svc.adapters.invoice_store import InvoiceStore
from invoicing_svc.adapters.subscription_store import SubscriptionStore
from invoicing_svc.adapters.tables import outbox
from invoicing_svc.adapters.webhook_store import WebhookStore
from invoicing_svc.domain.model import Invoice, Subscription
from invoicing_svc.domain.webhooks import WebhookEvent
from invoicing_svc.service_layer.replica_pushes import allowances
from invoicing_svc.service_layer.unit_of_work import (
    POST_INVOICE,
    PUSH_INVOICE,
    PUSH_SUBSCRIPTION,
    WEBHOOK_EVENT,
    Invoicing,
)
from service_kit.outbox import Handler, Outbox, OutboxMessage, OutboxRelay


def _named(messages: Sequence[OutboxMessage], key: str) -> set[str]:
    return {message.payload[key] for message in messages}


def _require_all(ids: set[str], found: Sequence[Invoice | Subscription]) -> None:
    """A message naming what does not exist fails (and is retried) alone."""
    missing = ids - {item.id for item in found}
    if missing:
        raise LookupError(f"not found: {', '.join(sorted(missing))}")


def _merchant(messages: Sequence[OutboxMessage]) -> str:
    return messages[0].merchant_id


async def _invoices(session: AsyncSession, messages: Sequence[OutboxMessage]) -> list[Invoice]:
    ids = _named(messages, "invoice_id")
    found = await InvoiceStore(session).invoices_by_id(_merchant(messages), ids)
    _require_all(ids, found)
    return found


def outbox_relay(invoicing: Invoicing) -> OutboxRelay:
    async def push_subscriptions(session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        # The current states, whatever versions the messages were written for: metering keeps
        # the newest version it has seen. Their plans (entitlements) are read after them, in
        # one statement.
        ids = _named(messages, "subscription_id")
        found = await SubscriptionStore(session).subscriptions_by_id(_merchant(messages), ids)
        _require_all(ids, found)
        plans = await CatalogStore(session).plans_by_id({(s.merchant_id, s.plan_id) for s in found})
        credits = await allowances(CreditBalanceStore(session), found, plans)
        await invoicing.metering.push_subscriptions(found, plans, credits)

    async def push_invoices(session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        await invoicing.metering.push_invoices(await _invoices(session, messages))

    async def post_invoices(session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        await invoicing.settlement.post_invoices(await _invoices(session, messages))

    async def fan_out_webhooks(session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        events = [
            WebhookEvent(
                id=event["id"],
                type=event["type"],
                body=json.dumps(
                    {"type": event["type"], "timestamp": event["timestamp"], "data": event["data"]},
                    separators=(",", ":"),
                ),
            )
            for event in (message.payload for message in messages)
        ]
        await WebhookStore(session, invoicing.secrets).fan_out(
            _merchant(messages), events, invoicing.clock.now()
        )

    handlers: dict[str, Handler] = {
        PUSH_SUBSCRIPTION: push_subscriptions,
        PUSH_INVOICE: push_invoices,
        POST_INVOICE: post_invoices,
        WEBHOOK_EVENT: fan_out_webhooks,
    }
    return OutboxRelay(invoicing.sessions, Outbox(outbox), handlers, invoicing.clock)

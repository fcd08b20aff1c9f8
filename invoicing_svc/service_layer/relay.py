"""What the outbox relay does with each topic. Every handler is idempotent."""

import json

from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.invoice_store import InvoiceStore
from invoicing_svc.adapters.subscription_store import SubscriptionStore
from invoicing_svc.adapters.tables import outbox
from invoicing_svc.adapters.webhook_store import WebhookStore
from invoicing_svc.service_layer.unit_of_work import (
    POST_INVOICE,
    PUSH_INVOICE,
    PUSH_SUBSCRIPTION,
    WEBHOOK_EVENT,
    Invoicing,
)
from service_kit.outbox import Handler, Outbox, OutboxMessage, OutboxRelay


def outbox_relay(invoicing: Invoicing) -> OutboxRelay:
    async def push_subscription(session: AsyncSession, message: OutboxMessage) -> None:
        # The current state, whatever version the message was written for: metering keeps the
        # newest version it has seen.
        subscription = await SubscriptionStore(session).subscription(
            message.merchant_id, message.payload["subscription_id"]
        )
        assert subscription is not None
        await invoicing.metering.push_subscription(subscription)

    async def push_invoice(session: AsyncSession, message: OutboxMessage) -> None:
        invoice = await InvoiceStore(session).get(
            message.merchant_id, message.payload["invoice_id"]
        )
        assert invoice is not None
        await invoicing.metering.push_invoice(invoice)

    async def fan_out_webhook(session: AsyncSession, message: OutboxMessage) -> None:
        event = message.payload
        body = json.dumps(
            {"type": event["type"], "timestamp": event["timestamp"], "data": event["data"]},
            separators=(",", ":"),
        )
        await WebhookStore(session, invoicing.secrets).fan_out(
            message.merchant_id, event["id"], event["type"], body, invoicing.clock.now()
        )

    async def post_invoice(session: AsyncSession, message: OutboxMessage) -> None:
        invoice = await InvoiceStore(session).get(
            message.merchant_id, message.payload["invoice_id"]
        )
        assert invoice is not None
        await invoicing.settlement.post_invoice(invoice)

    handlers: dict[str, Handler] = {
        PUSH_SUBSCRIPTION: push_subscription,
        PUSH_INVOICE: push_invoice,
        POST_INVOICE: post_invoice,
        WEBHOOK_EVENT: fan_out_webhook,
    }
    return OutboxRelay(invoicing.sessions, Outbox(outbox), handlers, invoicing.clock)

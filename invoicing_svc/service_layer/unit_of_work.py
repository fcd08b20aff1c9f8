"""Invoicing's unit of work and the dependencies its use cases share."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from invoicing_svc.adapters.alert_store import AlertStore
from invoicing_svc.adapters.auto_top_up_store import AutoTopUpStore
from invoicing_svc.adapters.catalog_store import CatalogStore
from invoicing_svc.adapters.credit_balance_store import CreditBalanceStore
from invoicing_svc.adapters.customer_store import CustomerStore
from invoicing_svc.adapters.discount_store import DiscountStore
from invoicing_svc.adapters.invoice_store import InvoiceStore
from invoicing_svc.adapters.merchant_settings_store import MerchantSettingsStore
from invoicing_svc.adapters.metering_client import MeteringClient
from invoicing_svc.adapters.secret_box import SecretBox
from invoicing_svc.adapters.settlement_client import SettlementClient
from invoicing_svc.adapters.subscription_store import SubscriptionStore
from invoicing_svc.adapters.tables import idempotency_records, outbox
from invoicing_svc.adapters.webhook_sender import WebhookSender
from invoicing_svc.adapters.webhook_store import WebhookStore
from invoicing_svc.domain.model import Invoice, Subscription
from invoicing_svc.settings import InvoicingSettings
from service_kit.clock import Clock
from service_kit.database import UnitOfWork
from service_kit.idempotency import IdempotencyStore
from service_kit.ids import new_id
from service_kit.outbox import message_row

# Outbox topics.
PUSH_SUBSCRIPTION = "metering.subscription"
PUSH_INVOICE = "metering.invoice"
POST_INVOICE = "settlement.invoice"
WEBHOOK_EVENT = "webhook.event"

# Renders a domain object as the `data` of a webhook event (the API's JSON form).
Renderer = Callable[[object], dict[str, Any]]


class InvoicingUnitOfWork(UnitOfWork):
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], render: Renderer, secrets: SecretBox
    ) -> None:
        super().__init__(sessions)
        self._render = render
        self._secrets = secrets

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.catalog = CatalogStore(self.session)
        self.customers = CustomerStore(self.session)
        self.subscriptions = SubscriptionStore(self.session)
        self.invoices = InvoiceStore(self.session)
        self.credit_balances = CreditBalanceStore(self.session)
        self.auto_top_ups = AutoTopUpStore(self.session)
        self.alerts = AlertStore(self.session)
        self.discounts = DiscountStore(self.session)
        self.merchant_settings = MerchantSettingsStore(self.session)
        self.webhooks = WebhookStore(self.session, self._secrets)
        self.idempotency = IdempotencyStore(idempotency_records)
        # Messages are written in one statement at commit: a period close emits thousands.
        self._messages: list[dict[str, Any]] = []
        return self

    async def commit(self) -> None:
        if self._messages:
            await self.session.execute(insert(outbox), self._messages)
            self._messages = []
        await super().commit()

    def _add_message(
        self, merchant_id: str, topic: str, payload: dict[str, Any], now: datetime
    ) -> None:
        self._messages.append(message_row(merchant_id, topic, payload, now))

    async def emit(self, merchant_id: str, event_type: str, subject: object, now: datetime) -> None:
        """A webhook event, snapshotting the subject now (a dict is sent as it is), delivered
        after this transaction."""
        payload = {
            "id": new_id("msg"),
            "type": event_type,
            "timestamp": now.isoformat(),
            "data": subject if isinstance(subject, dict) else self._render(subject),
        }
        self._add_message(merchant_id, WEBHOOK_EVENT, payload, now)

    async def subscription_changed(self, subscription: Subscription, now: datetime) -> None:
        """Every state change of a subscription reaches metering's replica."""
        payload = {"subscription_id": subscription.id}
        self._add_message(subscription.merchant_id, PUSH_SUBSCRIPTION, payload, now)

    async def invoice_created(self, invoice: Invoice, now: datetime) -> None:
        """Metering learns of the invoice (to link events); a finalized one reaches the ledger."""
        payload = {"invoice_id": invoice.id}
        self._add_message(invoice.merchant_id, PUSH_INVOICE, payload, now)
        if invoice.finalize_time is not None:
            await self.invoice_posted(invoice, now)

    async def invoice_posted(self, invoice: Invoice, now: datetime) -> None:
        """The ledger records a finalized invoice, and reverses a voided one."""
        payload = {"invoice_id": invoice.id}
        self._add_message(invoice.merchant_id, POST_INVOICE, payload, now)


@dataclass(frozen=True)
class Invoicing:
    """Everything an invoicing use case needs, wired once in bootstrap.py."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    settings: InvoicingSettings
    metering: MeteringClient
    settlement: SettlementClient
    webhook_sender: WebhookSender
    render: Renderer
    secrets: SecretBox

    def unit_of_work(self) -> InvoicingUnitOfWork:
        return InvoicingUnitOfWork(self.sessions, self.render, self.secrets)

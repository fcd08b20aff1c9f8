"""Wires invoicing's real dependencies, hosts it on a gRPC server, runs its background work."""

import asyncio

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from invoicing_svc.adapters.metering_client import MeteringClient
from invoicing_svc.adapters.secret_box import SecretBox
from invoicing_svc.adapters.settlement_client import SettlementClient
from invoicing_svc.adapters.tables import InvoiceRow, outbox
from invoicing_svc.adapters.webhook_sender import WebhookSender
from invoicing_svc.api.servicer import InvoicingServicer
from invoicing_svc.api.translate import webhook_renderer
from invoicing_svc.domain.model import InvoiceStatus
from invoicing_svc.service_layer.alerts import check_alerts
from invoicing_svc.service_layer.period_close import close_due_periods, mark_overdue
from invoicing_svc.service_layer.relay import outbox_relay
from invoicing_svc.service_layer.trials import remind_trials_ending
from invoicing_svc.service_layer.unit_of_work import Invoicing
from invoicing_svc.service_layer.webhooks import keep_delivering_webhooks
from invoicing_svc.settings import InvoicingSettings
from service_kit.background import every
from service_kit.clock import Clock, SystemClock
from service_kit.database import create_engine, session_factory
from service_kit.grpc_server import RunningServer, ServiceBinding, start_server
from service_kit.metric_probes import outbox_probe, status_probe
from service_kit.metrics import ServiceMetrics
from service_kit.outbox import start_relays


def build(settings: InvoicingSettings, clock: Clock | None = None) -> Invoicing:
    credentials = settings.service_credentials()
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    return Invoicing(
        engine=engine,
        sessions=session_factory(engine),
        clock=clock or SystemClock(),
        settings=settings,
        metering=MeteringClient(
            settings.metering_address, credentials, settings.metering_deadline_seconds
        ),
        settlement=SettlementClient(
            settings.settlement_address, credentials, settings.metering_deadline_seconds
        ),
        webhook_sender=WebhookSender(
            settings.webhook_timeout_seconds,
            allow_http=settings.webhook_allow_http,
            allow_private=settings.webhook_allow_private_targets,
            max_connections=settings.webhook_concurrency,
        ),
        render=webhook_renderer(settings.checkout_base_url),
        secrets=SecretBox(settings.secrets_key.get_secret_value()),
    )


async def start(invoicing: Invoicing) -> RunningServer:
    binding = ServiceBinding.of(
        invoicing_pb2.DESCRIPTOR.services_by_name["InvoicingService"],
        InvoicingServicer(invoicing),
        invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server,
    )
    metrics = ServiceMetrics("invoicing_svc")
    sessions = invoicing.sessions
    metrics.add_probe(status_probe(metrics, sessions, "invoices", InvoiceRow.status, InvoiceStatus))
    metrics.add_probe(outbox_probe(metrics, sessions, outbox, invoicing.clock))
    return await start_server([binding], invoicing.settings, metrics)


def start_background_work(invoicing: Invoicing) -> list[asyncio.Task[None]]:
    """The period-close scheduler (with trial reminders and overdue marking), the outbox relays,
    the webhook worker."""
    interval = invoicing.settings.poll_interval_seconds
    relay = outbox_relay(invoicing)

    async def schedule() -> None:
        await remind_trials_ending(invoicing)
        await close_due_periods(invoicing)
        await mark_overdue(invoicing)

    return [
        asyncio.create_task(every(interval, "period_close", schedule)),
        asyncio.create_task(
            every(invoicing.settings.alert_check_seconds, "alerts", lambda: check_alerts(invoicing))
        ),
        asyncio.create_task(keep_delivering_webhooks(invoicing)),
        *start_relays(relay, interval, invoicing.settings.outbox_relay_workers),
    ]


async def close(invoicing: Invoicing) -> None:
    await invoicing.metering.close()
    await invoicing.settlement.close()
    await invoicing.webhook_sender.close()
    await invoicing.engine.dispose()

"""Wires settlement's real dependencies, hosts it on a gRPC server, runs its background work."""

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from grpc_health.v1 import health_pb2
from prometheus_client.metrics_core import Metric

from billing.settlement.v1 import settlement_pb2, settlement_pb2_grpc
from service_kit.background import every
from service_kit.clock import Clock, SystemClock
from service_kit.database import create_engine, session_factory
from service_kit.grpc_server import RunningServer, ServiceBinding, start_server
from service_kit.metric_probes import outbox_probe, status_probe
from service_kit.metrics import Probe, ServiceMetrics
from service_kit.outbox import start_relays
from service_kit.service_main import CannotServe
from settlement_svc.adapters.account_key import AccountKey
from settlement_svc.adapters.chain import Chain
from settlement_svc.adapters.invoicing_client import InvoicingClient
from settlement_svc.adapters.mandate_contract import MandateContract
from settlement_svc.adapters.tables import SettlementRow, outbox
from settlement_svc.adapters.usdc import Usdc
from settlement_svc.api.servicer import SettlementServicer
from settlement_svc.domain.model import SettlementStatus
from settlement_svc.service_layer.chain_check import ChainCheck
from settlement_svc.service_layer.collections import collect_due
from settlement_svc.service_layer.mandate_events import refresh_mandates
from settlement_svc.service_layer.prepaid_credits import expire_grants
from settlement_svc.service_layer.relay import outbox_relay
from settlement_svc.service_layer.relayer_health import (
    LowGasWatch,
    account_gas,
    relays_by_outcome,
)
from settlement_svc.service_layer.transactions import resend_unmined
from settlement_svc.service_layer.unit_of_work import Settlements
from settlement_svc.service_layer.verification import verify_pending
from settlement_svc.service_layer.watcher import watch_once, watcher_lag
from settlement_svc.settings import SettlementSettings

SERVICE = settlement_pb2.DESCRIPTOR.services_by_name["SettlementService"]
log = structlog.get_logger()


def build(settings: SettlementSettings, clock: Clock | None = None) -> Settlements:
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    chain = Chain(settings.chain_rpc_url, settings.chain_timeout_seconds)
    return Settlements(
        engine=engine,
        sessions=session_factory(engine),
        clock=clock or SystemClock(),
        settings=settings,
        chain=chain,
        chain_check=ChainCheck(chain, settings.chain_rpc_url, settings.chain_id),
        invoicing=InvoicingClient(
            settings.invoicing_address,
            settings.service_credentials(),
            settings.invoicing_deadline_seconds,
        ),
        usdc=Usdc(chain, settings.usdc_contract_address),
        relayer=AccountKey.load(settings.relayer_private_key, settings.relayer_private_key_file),
        mandates=MandateContract(chain, settings.mandates_contract_address),
        collector=AccountKey.load(
            settings.collector_private_key, settings.collector_private_key_file
        ),
    )


async def start(service: Settlements) -> RunningServer:
    """Serves settlement. A node on another chain than SETTLEMENT_CHAIN_ID refuses the start
    (CannotServe); a node that cannot be reached yet leaves it NOT_SERVING until it answers."""
    binding = ServiceBinding.of(
        SERVICE,
        SettlementServicer(service),
        settlement_pb2_grpc.add_SettlementServiceServicer_to_server,
    )
    metrics = ServiceMetrics("settlement_svc")
    sessions = service.sessions
    metrics.add_probe(
        status_probe(metrics, sessions, "settlements", SettlementRow.status, SettlementStatus)
    )
    metrics.add_probe(outbox_probe(metrics, sessions, outbox, service.clock))
    metrics.add_probe(_relayer_probe(metrics, service))
    metrics.add_probe(_watcher_probe(metrics, service))
    running = await start_server([binding], service.settings, metrics)
    if not await _report_readiness(service, running) and service.chain_check.mismatch:
        await running.stop(0)
        raise CannotServe(service.chain_check.mismatch)
    return running


def _relayer_probe(metrics: ServiceMetrics, service: Settlements) -> Probe:
    async def probe() -> list[Metric]:
        outcomes = await relays_by_outcome(service)
        found = [
            metrics.gauge_by(
                "settlement_relays", "Relayed payments by settlement status.", "status", outcomes
            )
        ]
        for gas in await account_gas(service):
            found.append(
                metrics.gauge(
                    f"settlement_{gas.role}_balance_wei",
                    f"Gas money of the {gas.role}.",
                    gas.balance_wei,
                )
            )
            found.append(
                metrics.gauge(
                    f"settlement_{gas.role}_low_gas",
                    f"1 when the {gas.role} holds less than SETTLEMENT_RELAYER_LOW_GAS_WEI.",
                    int(gas.low),
                )
            )
        return found

    return probe


def _watcher_probe(metrics: ServiceMetrics, service: Settlements) -> Probe:
    async def probe() -> list[Metric]:
        async with service.unit_of_work() as uow:
            recognised, credits = await uow.watcher.totals()
        found: list[Metric] = [
            metrics.counter_value(
                "settlement_watcher_payments_recognised",
                "Payments bound to a request the chain watcher made a settlement of.",
                recognised,
            ),
            metrics.counter_value(
                "settlement_watcher_credits",
                "Payments the chain watcher recorded as the subscriber's credit.",
                credits,
            ),
        ]
        lag = await watcher_lag(service)
        if lag is not None:
            found.append(
                metrics.gauge(
                    "settlement_watcher_lag_blocks",
                    "Blocks mined that the chain watcher has not read yet.",
                    lag,
                )
            )
        return found

    return probe


async def _report_readiness(service: Settlements, running: RunningServer) -> bool:
    """SERVING once the node is the configured chain, NOT_SERVING before."""
    ready = await service.chain_check.check()
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if ready
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", SERVICE.full_name):
        await running.health.set(name, status)
    return ready


def _gas_readiness(service: Settlements, running: RunningServer) -> Callable[[], Awaitable[None]]:
    """Readiness of each sending account, under its role's name ("relayer", "collector"):
    NOT_SERVING while it is low on gas. The service itself stays SERVING: its API answers, and
    what the account signs meanwhile is stored and sent once it holds gas again."""
    watch = LowGasWatch()

    async def report() -> None:
        try:
            readings = await account_gas(service)
        except Exception as error:  # the node cannot be reached: the last status stands
            log.warning("chain.unreachable", work="account_gas", error=str(error))
            return
        for gas in watch.changed(readings):
            status = (
                health_pb2.HealthCheckResponse.NOT_SERVING
                if gas.low
                else health_pb2.HealthCheckResponse.SERVING
            )
            await running.health.set(gas.role, status)

    return report


def start_background_work(service: Settlements, running: RunningServer) -> list[asyncio.Task[None]]:
    """The verifier re-checking pending settlements, the resend pass of the platform's
    transactions, the chain watcher, collections under mandates and the mandates' state, the
    expiry of credit grants, the outbox relays, the chain check of a node that could not be
    reached at the start, and the readiness of the relayer's and the collector's gas."""
    interval = service.settings.poll_interval_seconds
    relay = outbox_relay(service)

    # Whether SERVING was reported: the verifier's or the watcher's check may be the one that
    # finds the node matching, and readiness must follow it all the same.
    served = service.chain_check.matched

    async def check_chain() -> None:
        nonlocal served
        if not served:
            served = await _report_readiness(service, running)

    return [
        asyncio.create_task(every(interval, "chain_check", check_chain)),
        asyncio.create_task(every(interval, "account_gas", _gas_readiness(service, running))),
        asyncio.create_task(every(interval, "verify_settlements", lambda: verify_pending(service))),
        asyncio.create_task(
            every(interval, "resend_transactions", lambda: resend_unmined(service))
        ),
        *(
            [asyncio.create_task(every(interval, "watch_chain", lambda: watch_once(service)))]
            if service.settings.watcher_enabled
            else []
        ),
        asyncio.create_task(every(interval, "collect_invoices", lambda: collect_due(service))),
        asyncio.create_task(every(interval, "refresh_mandates", lambda: refresh_mandates(service))),
        asyncio.create_task(every(interval, "expire_credits", lambda: expire_grants(service))),
        *start_relays(relay, interval, service.settings.outbox_relay_workers),
    ]


async def close(service: Settlements) -> None:
    await service.chain.close()
    await service.invoicing.close()
    await service.engine.dispose()

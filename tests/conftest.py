"""Session fixtures: one private PostgreSQL cluster, migrated by Alembic, and real gRPC servers."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2_grpc
from billing.settlement.v1 import settlement_pb2, settlement_pb2_grpc
from devstack.chain import Anvil, MockUsdc
from devstack.mandates import Mandates
from devstack.postgres import PrivateCluster, free_port, libpq_dsn
from invoicing_svc import bootstrap as invoicing_bootstrap
from invoicing_svc.service_layer.relay import outbox_relay as invoicing_relay
from invoicing_svc.service_layer.unit_of_work import Invoicing
from invoicing_svc.settings import InvoicingSettings
from metering_svc import bootstrap as metering_bootstrap
from metering_svc.service_layer.unit_of_work import Metering
from metering_svc.settings import MeteringSettings
from service_kit import migrations
from service_kit.channels import open_channel
from service_kit.clock import ManualClock
from service_kit.credentials import ServiceCredentials
from service_kit.grpc_errors import field_of
from settlement_svc import bootstrap as settlement_bootstrap
from settlement_svc.service_layer.relay import outbox_relay as settlement_relay
from settlement_svc.service_layer.unit_of_work import Settlements
from settlement_svc.settings import SettlementSettings

REPO = Path(__file__).parent.parent
SERVICES = ("metering_svc", "invoicing_svc", "settlement_svc", "gateway")
MIGRATIONS = [REPO / service / "migrations" for service in SERVICES]

# Encrypts webhook signing secrets (invoicing_svc/adapters/secret_box.py) in every test service.
SECRETS_KEY = Fernet.generate_key().decode()

# Tests run on a manual clock: events default to its "now", and it never moves backwards.
TEST_START = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)

# The internal service credential of every server, client and service process the tests start.
SERVICE_TOKEN = f"tests-{secrets.token_hex(16)}"
SERVICE_CREDENTIALS = ServiceCredentials(SERVICE_TOKEN)


def service_channel(port: int) -> grpc.aio.Channel:
    """A channel to a service on a loopback port, carrying the session's credential."""
    return open_channel(f"127.0.0.1:{port}", SERVICE_CREDENTIALS)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="billing-tests-"))
    cluster = PrivateCluster(root / "pgdata")
    cluster.start()
    try:
        cluster.create_database("billing")
        url = cluster.url("billing")
        for script_location in MIGRATIONS:
            migrations.upgrade(script_location, url)
        yield url
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection, for checking what the services stored."""
    connection = await asyncpg.connect(libpq_dsn(database_url))
    yield connection
    await connection.close()


@asynccontextmanager
async def scratch_database(
    db: asyncpg.Connection, database_url: str, name: str
) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A fresh, empty database in the session's cluster (to migrate from an old revision): its
    URL and a connection to it. Dropped afterwards."""
    await db.execute(f"CREATE DATABASE {name}")
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    connection = await asyncpg.connect(libpq_dsn(url))
    try:
        yield url, connection
    finally:
        await connection.close()
        await db.execute(f"DROP DATABASE {name}")


@asynccontextmanager
async def metering_server(database_url: str, clock: ManualClock) -> AsyncIterator[RunningMetering]:
    """A metering service on a free loopback port, on its own (manual) clock."""
    # Several instances of a service run at once: each serves its metrics on a free port.
    settings = MeteringSettings(
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        db_pool_size=20,
        service_token=SERVICE_TOKEN,
    )
    service = metering_bootstrap.build(settings, clock=clock)
    running = await metering_bootstrap.start(service)
    channel = service_channel(running.port)
    try:
        yield RunningMetering(
            service,
            running.port,
            metering_pb2_grpc.MeteringServiceStub(channel),
            running.metrics.port,
        )
    finally:
        await channel.close()
        await running.stop(1)
        await service.engine.dispose()


@dataclass(frozen=True)
class RunningMetering:
    service: Metering
    port: int
    stub: metering_pb2_grpc.MeteringServiceAsyncStub
    metrics_port: int


def field_violation(error: grpc.aio.AioRpcError) -> str:
    """The field named by the error's google.rpc details; fails when there is none."""
    field = field_of(error)
    assert field, f"the {error.code().name} error names no field"
    return field


CONFIRMATIONS = 3
# The anvil dev accounts the platform's relayer and collector send from (no test uses them as
# wallets).
RELAYER_ACCOUNT = 9
COLLECTOR_ACCOUNT = 7


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    # Block times start where the platform's frozen clock does, so an authorization's validity
    # window (checked by the token against block time) and a payment request's expiry (set by
    # the clock) agree.
    chain = Anvil(genesis_time=int(TEST_START.timestamp()))
    chain.start()
    yield chain
    chain.stop()


@pytest.fixture(scope="session")
async def usdc(anvil: Anvil) -> AsyncIterator[MockUsdc]:
    token = await MockUsdc.deploy(anvil.url, anvil.accounts[0])
    yield token
    await token.close()


@pytest.fixture(scope="session")
async def mandates(anvil: Anvil, usdc: MockUsdc) -> AsyncIterator[Mandates]:
    """The platform's mandate contract, collected from by the platform's collector."""
    contract = await Mandates.deploy(
        anvil.url, anvil.accounts[0], usdc.address, anvil.accounts[COLLECTOR_ACCOUNT]
    )
    yield contract
    await contract.close()


@dataclass
class Platform:
    """Metering, invoicing and settlement on loopback with anvil, sharing one manual clock."""

    invoicing: Invoicing
    invoicing_stub: invoicing_pb2_grpc.InvoicingServiceAsyncStub
    settlements: Settlements
    stub: settlement_pb2_grpc.SettlementServiceAsyncStub
    metering_stub: metering_pb2_grpc.MeteringServiceAsyncStub
    clock: ManualClock
    # host:port of metering, invoicing and settlement.
    addresses: tuple[str, str, str]
    # Their Prometheus ports.
    metrics_ports: tuple[int, int, int]


async def register_payout_wallet(platform: Platform, merchant_id: str) -> str:
    """Registers a fresh wallet (nobody's key, so only transfers fill it) as the merchant's payout
    wallet, as `python -m gateway create-key --wallet` does; returns it checksummed."""
    found = await platform.stub.SetPayoutWallet(
        settlement_pb2.SetPayoutWalletRequest(wallet_address="0x" + secrets.token_hex(20)),
        metadata=(("x-merchant-id", merchant_id),),
    )
    return str(found.wallet_address)


async def assert_ledger_reconciled(platform: Platform, database_url: str) -> None:
    """What the session's flows left: both outboxes relayed (dead letters stay parked), then
    Reconcile finds no difference for any merchant with invoices. Waiting messages are made due
    for any clock: tests/invoicing's services, whose settlement is nowhere, ran on a clock of
    their own (ahead of the platform's) and left their ledger postings waiting."""
    connection = await asyncpg.connect(libpq_dsn(database_url))
    try:
        for schema in ("invoicing", "settlement"):
            await connection.execute(
                f"UPDATE {schema}.outbox SET available_time = '-infinity'"
                " WHERE delivered_time IS NULL AND dead_time IS NULL"
            )
        # Left out: merchants with an invoice marked paid by a settlement that settlement never
        # had, where a test stood in for settlement (tests/invoicing/test_invoices.py calls
        # MarkInvoicePaid itself): the ledger rightly holds no payment for it.
        merchants = await connection.fetch(
            "SELECT DISTINCT merchant_id FROM invoicing.invoices EXCEPT"
            " SELECT i.merchant_id FROM invoicing.invoices i WHERE i.settlement_id IS NOT NULL"
            " AND NOT EXISTS (SELECT FROM settlement.settlements s WHERE s.id = i.settlement_id)"
        )
    finally:
        await connection.close()
    for relay in (settlement_relay(platform.settlements), invoicing_relay(platform.invoicing)):
        while await relay.relay_once():
            pass
    differences = {}
    for row in merchants:
        report = await platform.stub.Reconcile(
            settlement_pb2.ReconcileRequest(), metadata=(("x-merchant-id", row["merchant_id"]),)
        )
        if report.differences:
            differences[row["merchant_id"]] = [
                (d.kind, d.reference, d.expected, d.actual) for d in report.differences
            ]
    assert differences == {}


@pytest.fixture(scope="session")
async def platform(
    database_url: str, anvil: Anvil, usdc: MockUsdc, mandates: Mandates
) -> AsyncIterator[Platform]:
    clock = ManualClock(TEST_START)
    settlement_port = free_port()
    async with metering_server(database_url, clock) as metering:
        invoicing = invoicing_bootstrap.build(
            InvoicingSettings(
                database_url=database_url,
                grpc_port=0,
                metrics_port=0,
                service_token=SERVICE_TOKEN,
                metering_address=f"127.0.0.1:{metering.port}",
                settlement_address=f"127.0.0.1:{settlement_port}",
                test_clock_enabled=True,
                secrets_key=SECRETS_KEY,
                # Webhook receivers in tests listen on loopback, over plain http.
                webhook_allow_private_targets=True,
                webhook_allow_http=True,
            ),
            clock=clock,
        )
        invoicing_server = await invoicing_bootstrap.start(invoicing)
        settlements = settlement_bootstrap.build(
            SettlementSettings(
                database_url=database_url,
                grpc_port=settlement_port,
                metrics_port=0,
                service_token=SERVICE_TOKEN,
                invoicing_address=f"127.0.0.1:{invoicing_server.port}",
                chain_rpc_url=anvil.url,
                usdc_contract_address=usdc.address,
                required_confirmations=CONFIRMATIONS,
                settlement_expiry=timedelta(minutes=30),
                relayer_private_key=SecretStr(anvil.private_keys[RELAYER_ACCOUNT]),
                mandates_contract_address=mandates.address,
                mandates_start_block=0,
                collector_private_key=SecretStr(anvil.private_keys[COLLECTOR_ACCOUNT]),
            ),
            clock=clock,
        )
        settlement_server = await settlement_bootstrap.start(settlements)
        invoicing_channel = service_channel(invoicing_server.port)
        settlement_channel = service_channel(settlement_server.port)
        running = Platform(
            invoicing=invoicing,
            invoicing_stub=invoicing_pb2_grpc.InvoicingServiceStub(invoicing_channel),
            settlements=settlements,
            stub=settlement_pb2_grpc.SettlementServiceStub(settlement_channel),
            metering_stub=metering.stub,
            clock=clock,
            addresses=(
                f"127.0.0.1:{metering.port}",
                f"127.0.0.1:{invoicing_server.port}",
                f"127.0.0.1:{settlement_server.port}",
            ),
            metrics_ports=(
                metering.metrics_port,
                invoicing_server.metrics.port,
                settlement_server.metrics.port,
            ),
        )
        yield running
        try:
            await assert_ledger_reconciled(running, database_url)
        finally:
            await invoicing_channel.close()
            await settlement_channel.close()
            await settlement_server.stop(1)
            await invoicing_server.stop(1)
            await settlement_bootstrap.close(settlements)
            await invoicing_bootstrap.close(invoicing)

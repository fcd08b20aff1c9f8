"""The platform as real processes for fault injection: a private PostgreSQL cluster, anvil with
MockUSDC and the mandate contract (its state kept in a file, so it survives a restart), and
metering, invoicing, settlement (collecting from anvil account 7, the contract's collector) and
the gateway each as its own OS process on a fixed loopback port.

It is separate from the session cluster of the other tests, since these tests restart
PostgreSQL and kill processes. Every test leaves every process running (the autouse fixture
restarts what a failed test left down)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest

from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2 as mpb
from billing.metering.v1 import metering_pb2_grpc
from billing.settlement.v1 import settlement_pb2_grpc
from devstack.chain import Anvil, MockUsdc
from devstack.mandates import Mandates
from devstack.postgres import PrivateCluster, free_port, libpq_dsn
from devstack.processes import SERVICES, ServiceProcess, platform_env
from gateway.__main__ import issue_key
from gateway.settings import GatewaySettings
from service_kit import migrations
from service_kit.channels import open_channel
from service_kit.credentials import ServiceCredentials
from service_kit.proto_time import to_timestamp
from service_kit.tenancy import MERCHANT_METADATA_KEY
from tests.conftest import COLLECTOR_ACCOUNT, MIGRATIONS, SECRETS_KEY

# In-process invoicing on a manual clock, for faults that need clock time to pass (webhooks).
from tests.invoicing.conftest import billing_clock as billing_clock
from tests.invoicing.conftest import billing_metering as billing_metering
from tests.invoicing.conftest import invoicing as invoicing
from tests.invoicing.conftest import invoicing_stub as invoicing_stub
from tests.invoicing.conftest import merchant as merchant

# Every fault test gets a bound: a hung service must fail the test, not the whole run.
TEST_TIMEOUT_SECONDS = 120.0
_merchants = itertools.count(1)


@dataclass
class FaultPlatform:
    workdir: Path
    cluster: PrivateCluster
    anvil: Anvil
    usdc: MockUsdc
    processes: dict[str, ServiceProcess]
    credentials: ServiceCredentials
    database_url: str
    # The mandate contract settlement collects under, from anvil account COLLECTOR_ACCOUNT.
    mandates: Mandates

    @property
    def dsn(self) -> str:
        return libpq_dsn(self.database_url)

    @property
    def metering(self) -> ServiceProcess:
        return self.processes["metering_svc"]

    @property
    def invoicing(self) -> ServiceProcess:
        return self.processes["invoicing_svc"]

    @property
    def settlement(self) -> ServiceProcess:
        return self.processes["settlement_svc"]

    @property
    def gateway(self) -> ServiceProcess:
        return self.processes["gateway"]

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway.address}"

    def metadata(self, merchant_id: str) -> tuple[tuple[str, str], ...]:
        """The tenant a call acts for (the channel adds the service credential)."""
        return ((MERCHANT_METADATA_KEY, merchant_id),)

    def channel(self, process: ServiceProcess) -> grpc.aio.Channel:
        return open_channel(process.address, self.credentials, [("grpc.enable_http_proxy", 0)])

    async def api_key(self, merchant_id: str) -> str:
        """A new gateway API key of `merchant_id` (created on first use)."""
        settings = GatewaySettings(database_url=self.database_url)
        return await issue_key(settings, merchant_id, merchant_id, wallet="")

    def rest_client(self, api_key: str) -> httpx.AsyncClient:
        """A merchant's client of the gateway (no proxy: loopback)."""
        return httpx.AsyncClient(
            base_url=self.gateway_url,
            headers={"authorization": f"Bearer {api_key}"},
            timeout=30,
            trust_env=False,
        )

    async def start(self, process: ServiceProcess) -> None:
        await asyncio.to_thread(process.start)


@dataclass(frozen=True)
class Subscriber:
    """A merchant with one ACTIVE subscription in metering's replica, current around now."""

    merchant_id: str
    service_id: str
    subscription_id: str
    user_id: str
    period_start: datetime
    period_end: datetime

    def event(self, key: str, quantity: str) -> mpb.UsageEventInput:
        return mpb.UsageEventInput(
            service_id=self.service_id,
            subscription_id=self.subscription_id,
            user_id=self.user_id,
            event_key="token_generated",
            quantity=quantity,
            idempotency_key=key,
        )


def new_merchant_id(purpose: str) -> str:
    return f"mer_{purpose}{next(_merchants)}"


async def new_subscriber(platform: FaultPlatform, merchant_id: str) -> Subscriber:
    """Metering learns an ACTIVE subscription as invoicing tells it (UpsertSubscriptionState)."""
    now = datetime.now(UTC)
    subscriber = Subscriber(
        merchant_id=merchant_id,
        service_id=f"svc_{merchant_id}",
        subscription_id=f"sub_{merchant_id}",
        user_id=f"usr_{merchant_id}",
        period_start=now - timedelta(days=1),
        period_end=now + timedelta(days=29),
    )
    async with platform.channel(platform.metering) as channel:
        await metering_pb2_grpc.MeteringServiceStub(channel).UpsertSubscriptionState(
            mpb.UpsertSubscriptionStateRequest(
                state=mpb.SubscriptionState(
                    subscription_id=subscriber.subscription_id,
                    service_id=subscriber.service_id,
                    user_id=subscriber.user_id,
                    status=mpb.SUBSCRIPTION_STATUS_ACTIVE,
                    current_period_start=to_timestamp(subscriber.period_start),
                    current_period_end=to_timestamp(subscriber.period_end),
                    version=1,
                )
            ),
            metadata=platform.metadata(merchant_id),
            timeout=10,
        )
    return subscriber


async def _deploy_usdc(anvil: Anvil) -> MockUsdc:
    return await MockUsdc.deploy(anvil.url, anvil.accounts[0])


@pytest.fixture(scope="session")
async def fault_platform(request: pytest.FixtureRequest) -> AsyncIterator[FaultPlatform]:
    workdir = Path(tempfile.mkdtemp(prefix="billing-faults-"))
    cluster = PrivateCluster(workdir / "pgdata")
    anvil = Anvil(state=workdir / "anvil-state.json")
    processes: dict[str, ServiceProcess] = {}
    usdc: MockUsdc | None = None
    mandates: Mandates | None = None
    try:
        await asyncio.to_thread(cluster.start)
        await asyncio.to_thread(cluster.create_database, "billing")
        url = cluster.url("billing")
        for script_location in MIGRATIONS:
            await asyncio.to_thread(migrations.upgrade, script_location, url)
        await asyncio.to_thread(anvil.start)
        usdc = await _deploy_usdc(anvil)
        collector = anvil.accounts[COLLECTOR_ACCOUNT]
        mandates = await Mandates.deploy(anvil.url, anvil.accounts[0], usdc.address, collector)
        mandates_block = await mandates.w3.eth.block_number
        credentials = ServiceCredentials(secrets.token_hex(32))
        env = platform_env(
            url,
            {module: free_port() for module in SERVICES},
            chain_rpc_url=anvil.url,
            usdc_address=usdc.address,
            service_token=credentials.token,
            secrets_key=SECRETS_KEY,
        )
        # Short polls and deadlines keep the recoveries (and the test run) quick.
        env |= {
            "SETTLEMENT_POLL_INTERVAL_SECONDS": "0.2",
            "SETTLEMENT_CHAIN_TIMEOUT_SECONDS": "2",
            "INVOICING_POLL_INTERVAL_SECONDS": "0.2",
            "GATEWAY_BACKEND_DEADLINE_SECONDS": "2",
            "GATEWAY_MAX_BODY_BYTES": str(4 * 1024 * 1024),
            "SETTLEMENT_MANDATES_CONTRACT_ADDRESS": mandates.address,
            "SETTLEMENT_MANDATES_START_BLOCK": str(mandates_block),
            "SETTLEMENT_COLLECTOR_PRIVATE_KEY": anvil.private_keys[COLLECTOR_ACCOUNT],
        }
        for module in SERVICES:
            processes[module] = ServiceProcess(module, env, workdir / f"{module}.log")
        platform = FaultPlatform(
            workdir, cluster, anvil, usdc, processes, credentials, url, mandates
        )
        for process in processes.values():
            await platform.start(process)
        yield platform
    finally:
        for process in processes.values():
            await asyncio.to_thread(process.stop)
        if usdc is not None:
            await usdc.close()
        if mandates is not None:
            await mandates.close()
        anvil.stop()
        await asyncio.to_thread(cluster.stop)
        if request.session.testsfailed:
            print(f"\n[faults] logs of the failed run kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(autouse=True)
async def everything_running(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After a test on the process platform, whatever it left down is started again."""
    yield
    if "fault_platform" not in request.fixturenames:
        return
    platform: FaultPlatform = request.getfixturevalue("fault_platform")
    if not (platform.cluster.data_dir / "postmaster.pid").exists():
        await asyncio.to_thread(platform.cluster.start)
    for process in platform.processes.values():
        if not process.running():
            await platform.start(process)


@pytest.fixture
async def db(fault_platform: FaultPlatform) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the platform's database, for checking what was stored."""
    connection = await asyncpg.connect(fault_platform.dsn)
    yield connection
    await connection.close()


@pytest.fixture
async def metering_rpc(
    fault_platform: FaultPlatform,
) -> AsyncIterator[metering_pb2_grpc.MeteringServiceAsyncStub]:
    async with fault_platform.channel(fault_platform.metering) as channel:
        yield metering_pb2_grpc.MeteringServiceStub(channel)


@pytest.fixture
async def invoicing_rpc(
    fault_platform: FaultPlatform,
) -> AsyncIterator[invoicing_pb2_grpc.InvoicingServiceAsyncStub]:
    async with fault_platform.channel(fault_platform.invoicing) as channel:
        yield invoicing_pb2_grpc.InvoicingServiceStub(channel)


@pytest.fixture
async def settlement_rpc(
    fault_platform: FaultPlatform,
) -> AsyncIterator[settlement_pb2_grpc.SettlementServiceAsyncStub]:
    async with fault_platform.channel(fault_platform.settlement) as channel:
        yield settlement_pb2_grpc.SettlementServiceStub(channel)

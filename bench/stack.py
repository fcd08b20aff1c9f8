"""The benchmark's own platform: a private PostgreSQL, anvil with MockUSDC and the mandate
contract, and metering, invoicing, settlement and the gateway as separate processes, as in
production."""

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from devstack.chain import Anvil, MockUsdc
from devstack.mandates import Mandates
from devstack.postgres import PrivateCluster, free_port, libpq_dsn
from devstack.processes import grpc_serving
from service_kit import migrations
from service_kit.credentials import TOKEN_VARIABLE, ServiceCredentials

REPO = Path(__file__).resolve().parent.parent
SERVICES = ("metering_svc", "invoicing_svc", "settlement_svc", "gateway")
MERCHANT = "mer_bench"
# anvil's public dev account 7 collects under mandates (and relays them); no figure sends from it.
COLLECTOR_ACCOUNT = 7


@dataclass
class Stack:
    database_url: str
    metering: str
    invoicing: str
    settlement: str
    gateway_url: str
    api_key: str
    anvil: Anvil
    usdc_address: str
    # The mandate contract, its collector anvil.accounts[COLLECTOR_ACCOUNT].
    mandates_address: str
    workdir: Path
    # What a client of the services presents (the stack's own token).
    credentials: ServiceCredentials

    @property
    def dsn(self) -> str:
        """The database URL for asyncpg itself."""
        return libpq_dsn(self.database_url)


async def _deploy_contracts(anvil: Anvil) -> tuple[str, str, int]:
    """MockUSDC, then the mandate contract for it; answers both addresses and the block of the
    mandate contract's deployment (where settlement starts following it)."""
    usdc = await MockUsdc.deploy(anvil.url, anvil.accounts[0])
    await usdc.close()
    mandates = await Mandates.deploy(
        anvil.url, anvil.accounts[0], usdc.address, anvil.accounts[COLLECTOR_ACCOUNT]
    )
    try:
        deployed = await mandates.w3.eth.block_number
    finally:
        await mandates.close()
    return usdc.address, mandates.address, deployed


@contextmanager
def running_stack() -> Iterator[Stack]:
    """Enter outside an event loop; everything stops on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    cluster = PrivateCluster(workdir / "pgdata")
    cluster.start()
    anvil = Anvil()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        cluster.create_database("billing")
        url = cluster.url("billing")
        for service in SERVICES:
            migrations.upgrade(REPO / service / "migrations", url)
        anvil.start()
        usdc_address, mandates_address, mandates_block = asyncio.run(_deploy_contracts(anvil))
        ports = {service: free_port() for service in SERVICES}
        credentials = ServiceCredentials(secrets.token_hex(32))
        env = {
            **os.environ,
            TOKEN_VARIABLE: credentials.token,
            "METERING_GRPC_PORT": str(ports["metering_svc"]),
            "INVOICING_GRPC_PORT": str(ports["invoicing_svc"]),
            "SETTLEMENT_GRPC_PORT": str(ports["settlement_svc"]),
            "GATEWAY_HTTP_PORT": str(ports["gateway"]),
            "INVOICING_METERING_ADDRESS": f"127.0.0.1:{ports['metering_svc']}",
            "INVOICING_SETTLEMENT_ADDRESS": f"127.0.0.1:{ports['settlement_svc']}",
            "SETTLEMENT_INVOICING_ADDRESS": f"127.0.0.1:{ports['invoicing_svc']}",
            "GATEWAY_METERING_ADDRESS": f"127.0.0.1:{ports['metering_svc']}",
            "GATEWAY_INVOICING_ADDRESS": f"127.0.0.1:{ports['invoicing_svc']}",
            "GATEWAY_SETTLEMENT_ADDRESS": f"127.0.0.1:{ports['settlement_svc']}",
            "SETTLEMENT_CHAIN_RPC_URL": anvil.url,
            "SETTLEMENT_USDC_CONTRACT_ADDRESS": usdc_address,
            # anvil's public dev account 9 pays the gas of relayed authorizations.
            "SETTLEMENT_RELAYER_PRIVATE_KEY": anvil.private_keys[9],
            "SETTLEMENT_MANDATES_CONTRACT_ADDRESS": mandates_address,
            "SETTLEMENT_MANDATES_START_BLOCK": str(mandates_block),
            "SETTLEMENT_COLLECTOR_PRIVATE_KEY": anvil.private_keys[COLLECTOR_ACCOUNT],
            "INVOICING_TEST_CLOCK_ENABLED": "true",
            "INVOICING_SECRETS_KEY": Fernet.generate_key().decode(),
            "GATEWAY_SECRETS_KEY": Fernet.generate_key().decode(),
            # The benchmark measures throughput, not the rate limit.
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000000",
            "GATEWAY_RATE_LIMIT_BURST": "100000000",
            **{f"{s.split('_')[0].upper()}_DATABASE_URL": url for s in SERVICES},
            **{f"{s.split('_')[0].upper()}_LOG_LEVEL": "WARNING" for s in SERVICES},
            # Metrics on free ports: a `make up` alongside keeps its own.
            **{f"{s.split('_')[0].upper()}_METRICS_PORT": "0" for s in SERVICES[:3]},
        }
        for service in SERVICES:
            log = (workdir / f"{service}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", service, "serve"], env=env, stdout=log, stderr=log
                )
            )
        addresses = [f"127.0.0.1:{ports[s]}" for s in SERVICES[:3]]
        deadline = time.monotonic() + 60
        while not all(grpc_serving(address, credentials) for address in addresses):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the services did not start; see the logs in {workdir}")
            time.sleep(0.1)
        key = (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "create-key",
                    "--merchant",
                    MERCHANT,
                    "--wallet",
                    anvil.accounts[2],
                ],
                env={**env, "GATEWAY_LOG_LEVEL": "WARNING"},
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        yield Stack(
            database_url=url,
            metering=addresses[0],
            invoicing=addresses[1],
            settlement=addresses[2],
            gateway_url=f"http://127.0.0.1:{ports['gateway']}",
            api_key=key,
            anvil=anvil,
            usdc_address=usdc_address,
            mandates_address=mandates_address,
            workdir=workdir,
            credentials=credentials,
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)
        anvil.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)

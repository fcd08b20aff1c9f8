"""One service of the platform as an OS process on a fixed loopback port, for fault injection:
started, probed, killed with SIGKILL, stopped, and started again on the same port."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service_kit.channels import open_blocking_channel
from service_kit.credentials import TOKEN_VARIABLE, ServiceCredentials

GRPC_SERVICES = ("metering_svc", "invoicing_svc", "settlement_svc")
SERVICES = (*GRPC_SERVICES, "gateway")
# Health probes go straight to loopback, whatever proxy the environment configures.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def env_prefix(module: str) -> str:
    """METERING for metering_svc, GATEWAY for gateway."""
    return module.split("_")[0].upper()


def platform_env(
    database_url: str,
    ports: Mapping[str, int],
    *,
    chain_rpc_url: str,
    usdc_address: str,
    service_token: str,
    secrets_key: str,
) -> dict[str, str]:
    """The environment of every service process: where each service and the chain listen, the
    database, the shared service credential, the key sealing secrets at rest (webhook secrets,
    the gateway's stored answers). Test clocks on; webhooks to receivers on this machine over
    plain http; rate limits out of the way."""
    address = {module: f"127.0.0.1:{ports[module]}" for module in GRPC_SERVICES}
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        TOKEN_VARIABLE: service_token,
        "INVOICING_SECRETS_KEY": secrets_key,
        "GATEWAY_SECRETS_KEY": secrets_key,
        "GATEWAY_HTTP_PORT": str(ports["gateway"]),
        "INVOICING_METERING_ADDRESS": address["metering_svc"],
        "INVOICING_SETTLEMENT_ADDRESS": address["settlement_svc"],
        "SETTLEMENT_INVOICING_ADDRESS": address["invoicing_svc"],
        "GATEWAY_METERING_ADDRESS": address["metering_svc"],
        "GATEWAY_INVOICING_ADDRESS": address["invoicing_svc"],
        "GATEWAY_SETTLEMENT_ADDRESS": address["settlement_svc"],
        "SETTLEMENT_CHAIN_RPC_URL": chain_rpc_url,
        "SETTLEMENT_USDC_CONTRACT_ADDRESS": usdc_address,
        "INVOICING_TEST_CLOCK_ENABLED": "true",
        "INVOICING_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "INVOICING_WEBHOOK_ALLOW_HTTP": "true",
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000000",
        "GATEWAY_RATE_LIMIT_BURST": "100000000",
    }
    for module in SERVICES:
        env[f"{env_prefix(module)}_DATABASE_URL"] = database_url
        env[f"{env_prefix(module)}_LOG_LEVEL"] = "WARNING"
    for module in GRPC_SERVICES:
        env[f"{env_prefix(module)}_GRPC_PORT"] = str(ports[module])
        # Any free port: the fixed defaults would collide with another platform on this host.
        env[f"{env_prefix(module)}_METRICS_PORT"] = "0"
    return env


def grpc_serving(address: str, credentials: ServiceCredentials) -> bool:
    """Whether the gRPC server at `address` answers its health check with SERVING."""
    with open_blocking_channel(address, credentials, [("grpc.enable_http_proxy", 0)]) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # its typing stubs lack Check
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_healthy(url: str) -> bool:
    """Whether GET `url` answers 200."""
    try:
        with _NO_PROXY.open(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class ServiceProcess:
    """`python -m <module> serve` with a fixed environment, so a restart comes back on the same
    port with the same configuration. Output goes to `log_path` (appended across restarts)."""

    def __init__(self, module: str, env: Mapping[str, str], log_path: Path) -> None:
        self.module = module
        self.env = dict(env)
        self.log_path = log_path
        port_variable = "GATEWAY_HTTP_PORT" if module == "gateway" else None
        port_variable = port_variable or f"{env_prefix(module)}_GRPC_PORT"
        self.port = int(self.env[port_variable])
        self.address = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None, f"{self.module} was never started"
        return self._process.pid

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ready(self) -> bool:
        if self.module == "gateway":
            return http_healthy(f"http://{self.address}/healthz")
        return grpc_serving(self.address, ServiceCredentials(self.env[TOKEN_VARIABLE]))

    def start(self, timeout: float = 60.0) -> None:
        """Starts the process and returns once it serves."""
        assert not self.running(), f"{self.module} is running already"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", self.module, "serve"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.module} exited; see {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.module} not serving after {timeout:.0f} s")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, in-flight requests and transactions are cut."""
        assert self._process is not None and self.running(), f"{self.module} is not running"
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections, but nothing answers (a hung process)."""
        assert self._process is not None and self.running(), f"{self.module} is not running"
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None, f"{self.module} was never started"
        os.kill(self._process.pid, signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful shutdown), SIGKILL if it takes longer than `timeout`."""
        if self._process is None or not self.running():
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

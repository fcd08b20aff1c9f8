"""gRPC server bootstrap: services plus health, reflection, the service credential, request ids,
logs and metrics of every call, error mapping, and graceful shutdown."""

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service_kit.call_observer import CallObserver
from service_kit.grpc_errors import DomainErrorInterceptor
from service_kit.metrics import MetricsEndpoint, ServiceMetrics
from service_kit.service_auth import ServiceTokenInterceptor
from service_kit.settings import ServiceSettings

log = structlog.get_logger()

MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class ServiceBinding:
    """One gRPC service to host: its full name (from the descriptor) and how to register it."""

    full_name: str
    register: Callable[[grpc.aio.Server], None]

    @classmethod
    def of(
        cls,
        service: ServiceDescriptor,
        servicer: object,
        add_to_server: Callable[[Any, grpc.aio.Server], None],
    ) -> "ServiceBinding":
        """Binds a servicer with its generated `add_XServicer_to_server` function."""
        return cls(service.full_name, lambda server: add_to_server(servicer, server))


@dataclass(frozen=True)
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    metrics: MetricsEndpoint

    async def stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.metrics.stop()


async def start_server(
    bindings: Sequence[ServiceBinding], settings: ServiceSettings, metrics: ServiceMetrics
) -> RunningServer:
    """Starts a server on the configured host and port (port 0 picks a free one), and its metrics
    on the metrics port, and marks every service SERVING. Raises CredentialError without a
    service token."""
    credentials = settings.service_credentials()
    server = grpc.aio.server(
        # The observer comes first, so that refused calls are logged and counted too.
        interceptors=[
            CallObserver(metrics),
            ServiceTokenInterceptor(credentials.authorization),
            DomainErrorInterceptor(),
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    for binding in bindings:
        binding.register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [binding.full_name for binding in bindings]
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    if credentials.tls is None:
        bound_port = server.add_insecure_port(address)
    else:
        bound_port = server.add_secure_port(address, credentials.tls.server())
    endpoint = metrics.serve(settings.grpc_host, settings.metrics_port)
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, bound_port, health_servicer, endpoint)


async def wait_for_termination_signal() -> None:
    """Returns on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()

"""The internal service credential: every RPC of every service needs the shared token (health
checks excepted), and with mTLS configured a client without a certificate of the CA gets nowhere."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing.settlement.v1 import settlement_pb2, settlement_pb2_grpc
from gateway.backends import Backends
from gateway.settings import GatewaySettings
from service_kit.channels import open_blocking_channel, open_channel
from service_kit.credentials import CredentialError, ServiceCredentials
from service_kit.grpc_server import start_server
from service_kit.metrics import ServiceMetrics
from service_kit.service_auth import INVALID, MISSING
from service_kit.settings import ServiceSettings
from tests.conftest import SERVICE_CREDENTIALS, Platform, service_channel

MERCHANT = (("x-merchant-id", "mer_credentials"),)
WRONG = (("authorization", "Bearer not-the-service-token-at-all"),)


async def _get_meter(channel: grpc.aio.Channel, metadata: Any) -> object:
    stub = metering_pb2_grpc.MeteringServiceStub(channel)
    return await stub.GetMeter(metering_pb2.GetMeterRequest(id="mtr_none"), metadata=metadata)


async def _get_invoice(channel: grpc.aio.Channel, metadata: Any) -> object:
    stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
    return await stub.GetInvoice(invoicing_pb2.GetInvoiceRequest(id="inv_none"), metadata=metadata)


async def _get_settlement(channel: grpc.aio.Channel, metadata: Any) -> object:
    stub = settlement_pb2_grpc.SettlementServiceStub(channel)
    return await stub.GetSettlement(
        settlement_pb2.GetSettlementRequest(id="stl_none"), metadata=metadata
    )


async def _stream_events(channel: grpc.aio.Channel, metadata: Any) -> object:
    stub = metering_pb2_grpc.MeteringServiceStub(channel)
    request = metering_pb2.StreamUsageEventsRequest(
        event=metering_pb2.UsageEventInput(event_key="token_generated", quantity="1")
    )
    return [answer async for answer in stub.StreamUsageEvents(iter([request]), metadata=metadata)]


async def _list_services(channel: grpc.aio.Channel, metadata: Any) -> set[str]:
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    answers = [a async for a in stub.ServerReflectionInfo(iter([request]), metadata=metadata)]
    return {service.name for service in answers[0].list_services_response.service}


Call = Callable[[grpc.aio.Channel, Any], Awaitable[object]]
# (service index in Platform.addresses, call): a unary RPC of each service, and the streams.
CALLS: dict[str, tuple[int, Call]] = {
    "metering unary": (0, _get_meter),
    "metering stream": (0, _stream_events),
    "metering reflection": (0, _list_services),
    "invoicing unary": (1, _get_invoice),
    "invoicing reflection": (1, _list_services),
    "settlement unary": (2, _get_settlement),
    "settlement reflection": (2, _list_services),
}


async def _failure(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize(("presented", "details"), [((), MISSING), (WRONG, INVALID)])
async def test_a_call_without_the_right_token_is_unauthenticated(
    platform: Platform, name: str, presented: tuple[tuple[str, str], ...], details: str
) -> None:
    index, call = CALLS[name]
    async with grpc.aio.insecure_channel(platform.addresses[index]) as channel:
        error = await _failure(call(channel, (*MERCHANT, *presented)))
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, details)


@pytest.mark.parametrize("index", [0, 1, 2])
async def test_with_the_token_calls_reach_the_service(platform: Platform, index: int) -> None:
    unary = [_get_meter, _get_invoice, _get_settlement][index]
    port = int(platform.addresses[index].rsplit(":", 1)[1])
    async with service_channel(port) as channel:
        error = await _failure(unary(channel, MERCHANT))
        services = await _list_services(channel, ())
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert len(services) == 3 and "grpc.health.v1.Health" in services


def _blocking_get_meter(channel: grpc.Channel) -> grpc.StatusCode:
    stub = metering_pb2_grpc.MeteringServiceStub(channel)
    try:
        stub.GetMeter(metering_pb2.GetMeterRequest(id="mtr_none"), metadata=MERCHANT, timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_a_blocking_channel_carries_the_token_too(platform: Platform) -> None:
    with open_blocking_channel(platform.addresses[0], SERVICE_CREDENTIALS) as channel:
        with_token = await asyncio.to_thread(_blocking_get_meter, channel)
    with grpc.insecure_channel(platform.addresses[0]) as channel:
        without = await asyncio.to_thread(_blocking_get_meter, channel)
    assert (with_token, without) == (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED)


@pytest.mark.parametrize("index", [0, 1, 2])
async def test_health_answers_without_the_token(platform: Platform, index: int) -> None:
    async with grpc.aio.insecure_channel(platform.addresses[index]) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # its typing stubs lack Check
        reply = await stub.Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_service_refuses_to_start_without_the_token(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BILLING_SERVICE_TOKEN"}
    started = subprocess.run(
        [sys.executable, "-m", "metering_svc", "serve"],
        env={**env, "METERING_DATABASE_URL": database_url, "METERING_GRPC_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2
    assert started.stderr.startswith("metering_svc cannot serve: BILLING_SERVICE_TOKEN is not set")


def test_the_gateway_and_the_settings_refuse_a_missing_or_weak_token() -> None:
    with pytest.raises(CredentialError, match="BILLING_SERVICE_TOKEN is not set"):
        Backends(GatewaySettings(service_token=None))
    with pytest.raises(CredentialError, match="at least 16 visible ASCII characters"):
        ServiceSettings(service_token="short").service_credentials()
    assert SERVICE_CREDENTIALS.token not in repr(SERVICE_CREDENTIALS)


def _openssl(*arguments: str | Path) -> None:
    subprocess.run(["openssl", *map(str, arguments)], check=True, capture_output=True)


def _certificate(folder: Path, name: str, ca: str) -> tuple[Path, Path]:
    """A P-256 key and a certificate for 127.0.0.1, as server and client, signed by `ca`."""
    key, request, certificate = (folder / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
    extensions = folder / f"{name}.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl(
        *("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-keyout", key, "-out", request, "-subj", f"/CN={name}"),
    )
    _openssl(
        *("x509", "-req", "-in", request, "-CA", folder / f"{ca}.pem"),
        *("-CAkey", folder / f"{ca}.key", "-CAcreateserial", "-days", "1"),
        *("-out", certificate, "-extfile", extensions),
    )
    return certificate, key


def _authority(folder: Path, name: str) -> Path:
    _openssl(
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
        *("-nodes", "-days", "1", "-subj", f"/CN={name}"),
        *("-keyout", folder / f"{name}.key", "-out", folder / f"{name}.pem"),
    )
    return folder / f"{name}.pem"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA with a server and a client certificate, and a stranger CA with its own client."""
    folder = tmp_path_factory.mktemp("pki")
    _authority(folder, "ca")
    _authority(folder, "stranger-ca")
    _certificate(folder, "server", "ca")
    _certificate(folder, "client", "ca")
    _certificate(folder, "stranger", "stranger-ca")
    return folder


@pytest.fixture
async def mtls_server(pki: Path) -> AsyncIterator[str]:
    """A server with health and reflection only, requiring client certificates of the CA."""
    settings = ServiceSettings(
        grpc_port=0,
        metrics_port=0,
        service_token=SERVICE_CREDENTIALS.token,
        tls_cert_file=pki / "server.pem",
        tls_key_file=pki / "server.key",
        tls_ca_file=pki / "ca.pem",
    )
    running = await start_server([], settings, ServiceMetrics("mtls"))
    yield f"127.0.0.1:{running.port}"
    await running.stop(0)


def _client(pki: Path, name: str) -> ServiceCredentials:
    return ServiceCredentials.of(
        SERVICE_CREDENTIALS.token, pki / f"{name}.pem", pki / f"{name}.key", pki / "ca.pem"
    )


async def test_mtls_admits_a_client_certificate_of_the_ca(pki: Path, mtls_server: str) -> None:
    async with open_channel(mtls_server, _client(pki, "client")) as channel:
        services = await _list_services(channel, ())
    assert services == {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


@pytest.mark.parametrize("client", [None, "stranger"])
async def test_mtls_refuses_a_client_without_a_certificate_of_the_ca(
    pki: Path, mtls_server: str, client: str | None
) -> None:
    key = (pki / f"{client}.key").read_bytes() if client else None
    certificate = (pki / f"{client}.pem").read_bytes() if client else None
    tls = grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes(), key, certificate)
    async with grpc.aio.secure_channel(mtls_server, tls) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        error = await _failure(stub.Check(health_pb2.HealthCheckRequest(), timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_needs_all_three_files(pki: Path) -> None:
    with pytest.raises(CredentialError, match="mTLS needs all of BILLING_TLS_CERT_FILE"):
        ServiceSettings(
            service_token=SERVICE_CREDENTIALS.token, tls_cert_file=pki / "server.pem"
        ).service_credentials()


async def test_a_plaintext_client_cannot_reach_an_mtls_server(mtls_server: str) -> None:
    async with open_channel(mtls_server, SERVICE_CREDENTIALS) as channel:
        error = await _failure(asyncio.wait_for(_list_services(channel, ()), 10))
    assert error.code() == grpc.StatusCode.UNAVAILABLE

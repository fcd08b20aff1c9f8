"""Webhooks reach public hosts only (SSRF). With the production defaults an internal target is
refused at registration; an endpoint already stored (registered under the local-development
settings, or before the rule) is refused again at send time, before any request: its URL is
checked, then every address its name resolves to, and the connection goes to a checked address
with the Host header of the name. A failing answer is recorded as a short sanitized excerpt."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from devstack.postgres import free_port
from invoicing_svc import bootstrap
from invoicing_svc.adapters.webhook_sender import Resolver, WebhookSender
from invoicing_svc.service_layer.unit_of_work import Invoicing
from invoicing_svc.service_layer.webhooks import deliver_due_webhooks
from service_kit.clock import ManualClock
from tests.conftest import field_violation, service_channel
from tests.invoicing.conftest import Merchant
from tests.invoicing.receiver import Receiver

REFUSED = "destination address not allowed"
HOOKS = "hooks.merchant.example"


@pytest.fixture(scope="module")
async def production_stub(
    invoicing: Invoicing,
) -> AsyncIterator[invoicing_pb2_grpc.InvoicingServiceAsyncStub]:
    """An invoicing server with the default webhook settings: https to public hosts only."""
    defaults = invoicing.settings.model_copy(
        update={"webhook_allow_private_targets": False, "webhook_allow_http": False}
    )
    running = await bootstrap.start(replace(invoicing, settings=defaults))
    channel = service_channel(running.port)
    yield invoicing_pb2_grpc.InvoicingServiceStub(channel)
    await channel.close()
    await running.stop(1)


def answers(table: dict[str, list[str]]) -> Resolver:
    """A resolver answering from `table`; any other name does not exist."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def sending(
    merchant: Merchant, *, allow_http: bool, allow_private: bool, resolver: Resolver
) -> Invoicing:
    sender = WebhookSender(
        2.0,
        allow_http=allow_http,
        allow_private=allow_private,
        max_connections=8,
        resolver=resolver,
    )
    return replace(merchant.invoicing, webhook_sender=sender)


async def latest_attempt(merchant: Merchant, endpoint: pb.WebhookEndpoint) -> pb.WebhookAttempt:
    (delivery,) = await merchant.deliveries(endpoint)
    return delivery.attempts[-1]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://localhost:8443/",
        "https://[::1]/",
        "https://0x7f000001/",
        "https://2130706433/",
        "https://[::ffff:127.0.0.1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/",
        "https://192.168.1.1/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://user:secret@hooks.merchant.example/",
        "file:///etc/passwd",
    ],
)
async def test_internal_targets_are_refused_at_registration(
    merchant: Merchant, production_stub: invoicing_pb2_grpc.InvoicingServiceAsyncStub, url: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await production_stub.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(
                endpoint=pb.WebhookEndpoint(url=url, event_types=["*"])
            ),
            metadata=merchant.metadata,
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "endpoint.url",
    )
    assert await merchant.webhook_endpoints() == {}


async def test_the_loopback_receiver_is_refused_by_default_and_a_public_https_url_is_not(
    merchant: Merchant, production_stub: invoicing_pb2_grpc.InvoicingServiceAsyncStub
) -> None:
    refusals = {}
    for url in (f"http://127.0.0.1:{free_port()}/hooks", f"https://127.0.0.1:{free_port()}/"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await production_stub.CreateWebhookEndpoint(
                pb.CreateWebhookEndpointRequest(
                    endpoint=pb.WebhookEndpoint(url=url, event_types=["*"])
                ),
                metadata=merchant.metadata,
            )
        refusals[url.split(":")[0]] = caught.value.details()
    assert refusals == {
        "http": "endpoint.url must use https",
        "https": "endpoint.url must not point at a loopback, private, link-local or reserved"
        " address",
    }
    created = await production_stub.CreateWebhookEndpoint(
        pb.CreateWebhookEndpointRequest(
            endpoint=pb.WebhookEndpoint(url=f"https://{HOOKS}/billing", event_types=["*"])
        ),
        metadata=merchant.metadata,
    )
    assert list(await merchant.webhook_endpoints()) == [created.id]
    assert created.status == pb.WEBHOOK_ENDPOINT_STATUS_ENABLED


async def test_a_stored_loopback_endpoint_is_refused_at_send_time_without_a_request(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    with Receiver(free_port()) as receiver:
        # Registered under the local-development settings (as a row from before the rule).
        endpoint = await merchant.webhook_endpoint(f"http://127.0.0.1:{receiver.port}/hooks")
        assert await merchant.fan_out_webhooks(1) == 1
        errors = []
        for allow_http in (False, True):
            invoicing = sending(
                merchant, allow_http=allow_http, allow_private=False, resolver=answers({})
            )
            await deliver_due_webhooks(invoicing)
            attempt = await latest_attempt(merchant, endpoint)
            errors.append((attempt.status_code, attempt.error))
            billing_clock.advance(timedelta(minutes=10))
    assert errors == [
        (0, f"{REFUSED}: the URL must use https"),
        (
            0,
            f"{REFUSED}: the URL must not point at a loopback, private, link-local or reserved"
            " address",
        ),
    ]
    assert receiver.received == []


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["::1"], ["93.184.216.34", "10.0.0.8"], ["::ffff:169.254.169.254"]],
)
async def test_a_public_name_resolving_to_an_internal_address_is_refused_at_connect_time(
    merchant: Merchant, billing_clock: ManualClock, addresses: list[str]
) -> None:
    with Receiver(free_port()) as receiver:
        endpoint = await merchant.webhook_endpoint(f"http://{HOOKS}:{receiver.port}/hooks")
        assert await merchant.fan_out_webhooks(1) == 1
        invoicing = sending(
            merchant, allow_http=True, allow_private=False, resolver=answers({HOOKS: addresses})
        )
        await deliver_due_webhooks(invoicing)
        billing_clock.advance(timedelta(minutes=10))
    attempt = await latest_attempt(merchant, endpoint)
    # Refused before connecting anywhere, even to the public address among them.
    assert (attempt.status_code, attempt.error, attempt.duration_ms) == (0, REFUSED, 0)
    assert receiver.received == []


async def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    merchant: Merchant,
) -> None:
    with Receiver(free_port()) as receiver:
        endpoint = await merchant.webhook_endpoint(f"http://{HOOKS}:{receiver.port}/hooks")
        assert await merchant.fan_out_webhooks(1) == 1
        # The system resolver knows no such name: only the checked answer can be connected to.
        invoicing = sending(
            merchant, allow_http=True, allow_private=True, resolver=answers({HOOKS: ["127.0.0.1"]})
        )
        assert await deliver_due_webhooks(invoicing) >= 1
    ((headers, _),) = receiver.received
    assert headers["host"] == f"{HOOKS}:{receiver.port}"
    (delivery,) = await merchant.deliveries(endpoint)
    assert delivery.status == pb.DELIVERY_STATUS_SUCCEEDED


async def test_a_failing_answer_is_recorded_as_a_short_printable_excerpt(
    merchant: Merchant,
) -> None:
    answer = b"\x1b[31mdb password=hunter2\r\nline two\x00" + b"x" * 5000
    with Receiver(free_port(), status=500, answer=answer) as receiver:
        endpoint = await merchant.webhook_endpoint(f"http://127.0.0.1:{receiver.port}/hooks")
        assert await merchant.fan_out_webhooks(1) == 1
        await deliver_due_webhooks(merchant.invoicing)
    attempt = await latest_attempt(merchant, endpoint)
    # 200 bytes of the body, control characters gone, on one line; none of the headers.
    assert attempt.status_code == 500
    assert attempt.error == "[31mdb password=hunter2 line two " + "x" * 165
    assert "s3cr3t-header" not in attempt.error

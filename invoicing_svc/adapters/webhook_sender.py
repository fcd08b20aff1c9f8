"""Sends one signed webhook over HTTP (Standard Webhooks: webhook-id, -timestamp, -signature),
only to public addresses: the URL is checked again before each send, and the name is resolved
here, every address checked, and the connection made to a checked address (so a second lookup,
DNS rebinding, cannot swap it); TLS and the Host header still use the name."""

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address

import httpcore
from standardwebhooks.webhooks import Webhook

from invoicing_svc.domain.addresses import is_public
from invoicing_svc.domain.urls import webhook_url_problem

# The addresses a host name resolves to, as strings (getaddrinfo's).
Resolver = Callable[[str, int], Awaitable[list[str]]]
# What of a failing answer is recorded: the merchant sees it, so no more than a glimpse.
EXCERPT_BYTES = 200
NOT_ALLOWED = "destination address not allowed"
_SEND_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    TimeoutError,
)


@dataclass(frozen=True)
class SendOutcome:
    status_code: int
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


class DestinationNotAllowed(Exception):
    """The host resolves to an address a webhook may not reach."""


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def excerpt(body: bytes) -> str:
    """A failing answer's first bytes as printable text on one line, control characters gone."""
    text = body[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def signature_headers(
    secret: str, event_id: str, sent_at: datetime, body: str, previous_secret: str = ""
) -> dict[str, str]:
    """Standard Webhooks headers; within a secret roll's grace the old secret signs as well,
    space separated, so a receiver that still holds only the old secret verifies too."""
    secrets = [secret, previous_secret] if previous_secret else [secret]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(event_id, sent_at, body) for s in secrets),
        "content-type": "application/json",
    }


class _CheckedConnections(httpcore.AsyncNetworkBackend):
    """Connects to a host's addresses only when every one of them may be reached."""

    def __init__(self, resolver: Resolver, allow_private: bool) -> None:
        self._resolve = resolver
        self._allow_private = allow_private
        self._backend = httpcore.AnyIOBackend()

    # The signatures are httpcore's: the pool passes its timeouts.
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: object = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = [ip_address(found) for found in await self._resolve(host, port)]
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        if not self._allow_private and not all(is_public(address) for address in addresses):
            raise DestinationNotAllowed(NOT_ALLOWED)
        failure = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            try:
                return await self._backend.connect_tcp(str(address), port, timeout, local_address)
            except httpcore.ConnectError as error:
                failure = error
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: object = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationNotAllowed(NOT_ALLOWED)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class WebhookSender:
    """No redirects and no proxies: a webhook goes where it was told, or nowhere."""

    def __init__(
        self,
        timeout_seconds: float,
        *,
        allow_http: bool,
        allow_private: bool,
        max_connections: int,
        resolver: Resolver = resolve,
    ) -> None:
        self._timeout = timeout_seconds
        self._allow_http = allow_http
        self._allow_private = allow_private
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=max_connections,
            network_backend=_CheckedConnections(resolver, allow_private),
        )

    async def send(
        self,
        url: str,
        secret: str,
        event_id: str,
        body: str,
        sent_at: datetime,
        previous_secret: str = "",
    ) -> SendOutcome:
        problem = webhook_url_problem(
            url, allow_http=self._allow_http, allow_private=self._allow_private
        )
        if problem is not None:
            return SendOutcome(0, f"{NOT_ALLOWED}: the URL {problem}", 0)
        started = time.perf_counter()
        try:
            # The whole attempt is bounded, not each read: a trickling answer cannot hold it.
            async with asyncio.timeout(self._timeout):
                status, answer = await self._post(
                    url, signature_headers(secret, event_id, sent_at, body, previous_secret), body
                )
        except DestinationNotAllowed as error:
            return SendOutcome(0, str(error), 0)
        except _SEND_ERRORS as error:
            elapsed = int((time.perf_counter() - started) * 1000)
            return SendOutcome(0, excerpt(f"{type(error).__name__}: {error}".encode()), elapsed)
        elapsed = int((time.perf_counter() - started) * 1000)
        return SendOutcome(status, "" if 200 <= status < 300 else excerpt(answer), elapsed)

    async def _post(self, url: str, headers: dict[str, str], body: str) -> tuple[int, bytes]:
        """The status and the first bytes of the answer; the rest is never read."""
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), self._timeout)
        async with self._pool.stream(
            "POST",
            url,
            headers=list(headers.items()),
            content=body.encode(),
            extensions={"timeout": timeouts},
        ) as response:
            answer = b""
            async for chunk in response.aiter_stream():
                answer += chunk
                if len(answer) >= EXCERPT_BYTES:
                    break
            return response.status, answer

    async def close(self) -> None:
        await self._pool.aclose()

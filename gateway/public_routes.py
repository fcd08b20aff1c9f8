"""What the public payment endpoints and hosted pages share. They take no API key: they are found
by an unguessable invoice or checkout session id, a payment is authorized by the payer's
signature alone, and the merchant is the one on record for that id, never a field of the
request. Each client address has its own rate limit."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from billing.settlement.v1 import settlement_pb2 as spb
from gateway.context import Gateway
from gateway.errors import ApiError
from gateway.json_bodies import ExactJsonRequest, read_body
from gateway.merchants import Merchant, merchant
from gateway.tables import CheckoutOwnerRow

# A signed authorization is about 600 bytes.
MAX_PUBLIC_BODY_BYTES = 4096


def limit_client(request: Request) -> None:
    """One request of the client's address (429 past its bucket); the decision is left on
    `request.state.rate_limit` for the RateLimit headers."""
    gateway: Gateway = request.app.state.gateway
    address = request.client.host if request.client else ""
    decision = gateway.public_limiter.take(f"address:{address}")
    request.state.rate_limit = decision
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limit_error",
            "rate_limited",
            f"more than {decision.limit} payment requests a minute from this address",
            retry_after=decision.reset_seconds,
        )


class PublicRoute(APIRoute):
    """A public JSON operation. Before FastAPI reads anything: the client address's rate limit
    (429), then the body within MAX_PUBLIC_BODY_BYTES (413) parsed as exact JSON (400)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def limited(request: Request) -> Response:
            limit_client(request)
            sent = await read_body(request, MAX_PUBLIC_BODY_BYTES)
            return await handle(ExactJsonRequest(request.scope, request.receive, sent))

        return limited


def public_router(tag: str) -> APIRouter:
    """A router of public JSON operations. A body without a content type is JSON."""
    return APIRouter(
        prefix="/api/v1", tags=[tag], route_class=PublicRoute, strict_content_type=False
    )


def _unknown(what: str) -> ApiError:
    return ApiError(404, "invalid_request_error", "not_found", f"no such {what}")


async def invoice_owner(gateway: Gateway, invoice_id: str) -> Merchant:
    """The merchant of an invoice settlement recorded (LocateInvoice); 404 for any other id."""
    backends = gateway.backends
    found = await backends.call(
        backends.settlement.LocateInvoice, spb.LocateInvoiceRequest(invoice_id=invoice_id), None
    )
    async with gateway.sessions() as db:
        owner = await merchant(db, found.merchant_id)
    if owner is None:
        raise _unknown("invoice")
    return owner


async def checkout_owner(gateway: Gateway, session_id: str) -> Merchant:
    """The merchant that created the checkout session (recorded at its creation); 404 else."""
    async with gateway.sessions() as db:
        row = await db.get(CheckoutOwnerRow, session_id)
        owner = await merchant(db, row.merchant_id) if row else None
    if owner is None:
        raise _unknown("checkout session")
    return owner

"""One router module per resource, combined in gateway/app.py; what every merchant route shares:
its route class, the merchant dependency and the list parameters."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute

from gateway.authentication import authenticate
from gateway.context import Gateway, MerchantRequest
from gateway.json_bodies import ExactJsonRequest, read_body


class MerchantRoute(APIRoute):
    """A merchant operation. Before FastAPI reads anything, in this order: the API key (401, or
    429 after too many failures), the rate limit (429), the body within its size (413) parsed as
    exact JSON (400); so a stranger's body is never parsed. FastAPI then validates the typed
    body against the exact value."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            gateway: Gateway = request.app.state.gateway
            request.state.merchant = await authenticate(
                request, gateway.keys, gateway.auth_failures, gateway.limiter
            )
            sent = await read_body(request, gateway.settings.max_body_bytes)
            return await handle(ExactJsonRequest(request.scope, request.receive, sent))

        return authenticated


def merchant_router(tag: str) -> APIRouter:
    """The router of one resource of the merchant API. A body without a content type is JSON."""
    return APIRouter(
        prefix="/api/v1", tags=[tag], route_class=MerchantRoute, strict_content_type=False
    )


def _merchant_request(request: Request) -> MerchantRequest:
    assert isinstance(request, ExactJsonRequest)
    return MerchantRequest(
        gateway=request.app.state.gateway,
        merchant=request.state.merchant,
        method=request.method,
        path=request.url.path,
        idempotency_key=request.headers.get("idempotency-key"),
        body=request.sent,
    )


Merchant = Annotated[MerchantRequest, Depends(_merchant_request)]
Limit = Annotated[int, Query(ge=1, le=100)]
StartingAfter = Annotated[str, Query(alias="startingAfter", max_length=500)]


def page(data: list[dict[str, Any]], next_token: str) -> dict[str, Any]:
    """A list response: `nextStartingAfter` goes into `startingAfter` for the next page."""
    return {
        "object": "list",
        "data": data,
        "hasMore": bool(next_token),
        "nextStartingAfter": next_token or None,
    }

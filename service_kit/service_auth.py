"""The server side of the internal service credential: every call but a health check must carry
`authorization: Bearer <token>`, else it fails UNAUTHENTICATED before its handler runs."""

from __future__ import annotations

import hmac
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from service_kit.credentials import AUTHORIZATION_METADATA_KEY
from service_kit.grpc_handlers import HandlerInterceptor, invocation_value, with_behavior

# Orchestrators probe health without the credential; reflection describes the API, so it needs it.
HEALTH_METHOD_PREFIX = f"/{health_pb2.DESCRIPTOR.services_by_name['Health'].full_name}/"
MISSING = "missing service credential: send metadata `authorization: Bearer <service token>`"
INVALID = "invalid service credential"


def _refusal(
    handler: grpc.RpcMethodHandler[Any, Any], message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape that fails at once, without parsing the request."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return with_behavior(handler, refuse, request_deserializer=None)


class ServiceTokenInterceptor(HandlerInterceptor):
    def __init__(self, authorization: str) -> None:
        self._expected = authorization.encode()

    def rebuild(
        self,
        handler: grpc.RpcMethodHandler[Any, Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler_call_details.method.startswith(HEALTH_METHOD_PREFIX):
            return handler
        presented = invocation_value(handler_call_details, AUTHORIZATION_METADATA_KEY)
        if presented is None:
            return _refusal(handler, MISSING)
        candidate = presented if isinstance(presented, bytes) else presented.encode()
        if not hmac.compare_digest(candidate, self._expected):
            return _refusal(handler, INVALID)
        return handler

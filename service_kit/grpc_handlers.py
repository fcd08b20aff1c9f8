"""What server interceptors share: the metadata of a call, rebuilding a method handler around a
new behavior, and the interceptor shape that does so for every call to a known method."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

_MAKERS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


# `with_behavior` keeps the handler's own request deserializer unless told otherwise.
_SAME: Any = object()


def invocation_value(details: grpc.HandlerCallDetails, key: str) -> str | bytes | None:
    """The value of a metadata key of the call, None when absent."""
    return next((v for k, v in details.invocation_metadata or () if k == key), None)


def behavior_of(handler: grpc.RpcMethodHandler[Any, Any]) -> Any:
    """The handler's coroutine or async generator function (the stubs type it as sync)."""
    behaviors: Any = handler
    return (
        behaviors.unary_unary
        or behaviors.stream_unary
        or behaviors.unary_stream
        or behaviors.stream_stream
    )


def with_behavior(
    handler: grpc.RpcMethodHandler[Any, Any],
    behavior: Any,
    *,
    request_deserializer: Any = _SAME,
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape and codecs running `behavior`; another request deserializer
    may be given (None hands the behavior the request's raw bytes)."""
    make = _MAKERS[(handler.request_streaming, handler.response_streaming)]
    rebuilt: grpc.RpcMethodHandler[Any, Any] = make(
        behavior,
        request_deserializer=(
            handler.request_deserializer if request_deserializer is _SAME else request_deserializer
        ),
        response_serializer=handler.response_serializer,
    )
    return rebuilt


class HandlerInterceptor(grpc.aio.ServerInterceptor):
    """A server interceptor that rebuilds the handler of each call to a known method."""

    @abstractmethod
    def rebuild(
        self,
        handler: grpc.RpcMethodHandler[Any, Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """The handler this call runs instead of `handler`."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        return None if handler is None else self.rebuild(handler, handler_call_details)

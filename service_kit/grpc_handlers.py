"""Rebuilding a method handler around a new behavior, as server interceptors do."""

from __future__ import annotations

from typing import Any

import grpc

_MAKERS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


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
    handler: grpc.RpcMethodHandler[Any, Any], behavior: Any, *, parse_request: bool = True
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape and codecs running `behavior`; without `parse_request` the
    behavior gets the request's raw bytes."""
    make = _MAKERS[(handler.request_streaming, handler.response_streaming)]
    rebuilt: grpc.RpcMethodHandler[Any, Any] = make(
        behavior,
        request_deserializer=handler.request_deserializer if parse_request else None,
        response_serializer=handler.response_serializer,
    )
    return rebuilt

"""What every RPC leaves behind: its request id bound to the logs of the call, one log line
(method, status code, duration), and its count and latency in the service's metrics."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog

from service_kit.grpc_handlers import (
    HandlerInterceptor,
    behavior_of,
    invocation_value,
    with_behavior,
)
from service_kit.metrics import ServiceMetrics
from service_kit.request_ids import REQUEST_ID_METADATA_KEY, bind_request_id
from service_kit.service_auth import HEALTH_METHOD_PREFIX

log = structlog.get_logger()


def _status(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> str:
    """The code the caller gets: set by an abort or `set_code`, else OK or, after an exception
    no interceptor mapped, UNKNOWN."""
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED.name
    code = context.code()
    if code is not None:
        return str(code.name)
    return grpc.StatusCode.UNKNOWN.name if error else grpc.StatusCode.OK.name


class CallObserver(HandlerInterceptor):
    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics

    def _finish(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        started: float,
        error: BaseException | None,
    ) -> None:
        seconds = time.perf_counter() - started
        code = _status(context, error)
        self._metrics.observe_call(method, code, seconds)
        # Probes poll health every few seconds: their lines are DEBUG, not INFO.
        level = log.debug if method.startswith(HEALTH_METHOD_PREFIX) else log.info
        level("rpc", method=method, code=code, duration_ms=round(seconds * 1000, 3))
        structlog.contextvars.unbind_contextvars("request_id")

    def rebuild(
        self,
        handler: grpc.RpcMethodHandler[Any, Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        request_id = invocation_value(handler_call_details, REQUEST_ID_METADATA_KEY)
        finish = self._finish

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            bind_request_id(request_id if isinstance(request_id, str) else None)
            started, error = time.perf_counter(), None
            try:
                return await behavior(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                finish(method, context, started, error)

        async def streaming(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            bind_request_id(request_id if isinstance(request_id, str) else None)
            started, error = time.perf_counter(), None
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as raised:
                error = raised
                raise
            finally:
                finish(method, context, started, error)

        behavior = behavior_of(handler)
        return with_behavior(handler, streaming if inspect.isasyncgenfunction(behavior) else unary)

"""Maps domain errors to gRPC status with google.rpc error details, in one interceptor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service_kit.database import database_unavailable
from service_kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from service_kit.grpc_handlers import HandlerInterceptor, behavior_of, with_behavior
from service_kit.request_guard import checked, checked_stream, tolerant

log = structlog.get_logger()


def _detail_of(error: DomainError) -> Any:
    if isinstance(error, InvalidArgument):
        return error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=error.field, description=error.message
                )
            ]
        )
    if isinstance(error, FailedPrecondition):
        return error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="STATE", subject=error.field, description=error.message
                )
            ]
        )
    if isinstance(error, NotFound | AlreadyExists):
        return error_details_pb2.ResourceInfo(resource_name=error.field, description=error.message)
    return error_details_pb2.ErrorInfo(reason=type(error).__name__, domain="billing")


def field_of(error: grpc.aio.AioRpcError) -> str:
    """The field an error's google.rpc details name (what `_detail_of` put there); "" if none."""
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    if not isinstance(details, bytes):
        return ""
    for detail in status_pb2.Status.FromString(details).details:
        for kind in (
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.ResourceInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                if isinstance(message, error_details_pb2.BadRequest):
                    return str(message.field_violations[0].field)
                if isinstance(message, error_details_pb2.PreconditionFailure):
                    return str(message.violations[0].subject)
                return str(message.resource_name)
    return ""


def to_grpc_status(error: DomainError) -> grpc.Status:
    detail = any_pb2.Any()
    detail.Pack(_detail_of(error))
    code = grpc.StatusCode[error.code]
    message = status_pb2.Status(code=code.value[0], message=error.message, details=[detail])
    status: grpc.Status = rpc_status.to_status(message)
    return status


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: Exception) -> None:
    if isinstance(error, DomainError):
        await context.abort_with_status(to_grpc_status(error))
    if database_unavailable(error):
        # Retryable: the transaction rolled back (or, cut during COMMIT, committed, which the
        # retry's idempotency key absorbs). A PostgreSQL restart lasts seconds.
        log.warning("rpc.database_unavailable", error=str(error))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry")
    log.exception("rpc.internal_error", error=str(error))
    await context.abort_with_status(
        rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message="internal error"))
    )


def _wrap_unary(
    behavior: Callable[..., Awaitable[Any]], admit: Callable[[Any], Any]
) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(admit(request), context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _abort(context, error)

    return wrapped


def _wrap_streaming(
    behavior: Callable[..., AsyncIterator[Any]], admit: Callable[[Any], Any]
) -> Callable[..., AsyncIterator[Any]]:
    async def wrapped(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            async for response in behavior(admit(request), context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _abort(context, error)

    return wrapped


class DomainErrorInterceptor(HandlerInterceptor):
    """Turns a DomainError into its status code with details; anything else into INTERNAL.
    A request the deserializer refused (service_kit.request_guard) is INVALID_ARGUMENT."""

    def rebuild(
        self,
        handler: grpc.RpcMethodHandler[Any, Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        admit = checked_stream if handler.request_streaming else checked
        wrap = _wrap_streaming if handler.response_streaming else _wrap_unary
        return with_behavior(
            handler,
            wrap(behavior_of(handler), admit),
            request_deserializer=tolerant(handler.request_deserializer),
        )

"""A call from one service to another, with the callee's failure said in the caller's terms.

Without it an unreachable callee surfaces as the caller's INTERNAL; with it the caller answers
UNAVAILABLE (retry later), and the callee's NOT_FOUND names the caller's own field."""

from collections.abc import Awaitable
from typing import TypeVar

import grpc

from service_kit.errors import DomainError, FailedPrecondition, NotFound, Unavailable

T = TypeVar("T")

# The callee refused this request for good: retrying it cannot help.
_REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
}


async def answer_of(call: Awaitable[T], service: str, *, what: str = "", field: str = "") -> T:
    """The callee's answer. Its NOT_FOUND is NotFound("<what> not found", field); a refusal is
    FailedPrecondition quoting it; anything else (down, deadline, its own internal error) is
    Unavailable."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        raise backend_error(error, service, what=what, field=field) from None


def backend_error(
    error: grpc.aio.AioRpcError, service: str, *, what: str = "", field: str = ""
) -> DomainError:
    code = error.code()
    if code == grpc.StatusCode.NOT_FOUND and what:
        return NotFound(f"{what} not found", field=field)
    if code in _REFUSALS:
        return FailedPrecondition(f"{service} refused: {error.details()}", field=field)
    return Unavailable(f"{service} is unavailable ({code.name}); retry later")

"""The one error envelope: {"error": {"type", "code", "message", "param"}}, and how backend gRPC
statuses become HTTP statuses."""

import re
from dataclasses import dataclass

import grpc

from service_kit.grpc_errors import field_of

_STATUS_OF = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.NOT_FOUND: (404, "invalid_request_error"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "conflict_error"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "conflict_error"),
    grpc.StatusCode.ABORTED: (409, "conflict_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "api_error"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "api_error"),
}


@dataclass
class ApiError(Exception):
    status: int
    type: str
    code: str
    message: str
    param: str = ""
    # Seconds a rate-limited client should wait (the Retry-After header).
    retry_after: int | None = None

    def envelope(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param or None,
            }
        }


def camel(path: str) -> str:
    """A proto field path in the API's JSON spelling: "meter.event_key" -> "eventKey"."""
    leaf = path.split(".")[-1] if not path.startswith("properties.") else path
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), leaf)


def from_grpc(error: grpc.aio.AioRpcError) -> ApiError:
    return from_status(error.code(), error.details() or "", field_of(error))


def from_status(code: grpc.StatusCode, message: str, field: str) -> ApiError:
    """The HTTP error of a gRPC status; a backend failure hides its detail behind 503/502."""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        # No service limits rates (429 is the gateway's own limit): this is a message over a
        # gRPC size limit, and its text describes the server, not the request.
        return ApiError(
            413,
            "invalid_request_error",
            "request_too_large",
            "the request is larger than a billing service accepts",
        )
    status, kind = _STATUS_OF.get(code, (502, "api_error"))
    if status >= 500:
        return ApiError(
            status, kind, "backend_unavailable", "a billing service is unavailable; retry later"
        )
    return ApiError(status, kind, code.name.lower(), message, camel(field) if field else "")

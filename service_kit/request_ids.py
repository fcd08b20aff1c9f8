"""The request id that follows one call from the gateway through every service and its logs.

It lives in structlog's context variables, so every log line of the call carries it, and the
gRPC client side forwards it to the next service in the `x-request-id` metadata."""

import structlog

from service_kit.ids import new_id

REQUEST_ID_METADATA_KEY = "x-request-id"
REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_ID = 128


def bind_request_id(request_id: str | None) -> str:
    """Binds the caller's id (or a new one when absent or unusable) to the current context."""
    if not request_id or len(request_id) > MAX_REQUEST_ID or not request_id.isprintable():
        request_id = new_id("req")
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None

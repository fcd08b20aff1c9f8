"""The merchant (tenant) a call acts for, passed by the caller in gRPC metadata."""

import re
from typing import Any

import grpc

from service_kit.errors import InvalidArgument, Unauthenticated

MERCHANT_METADATA_KEY = "x-merchant-id"
_MERCHANT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def merchant_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's merchant id; UNAUTHENTICATED when absent, INVALID_ARGUMENT when malformed."""
    for key, value in context.invocation_metadata() or ():
        if key == MERCHANT_METADATA_KEY:
            text = value if isinstance(value, str) else value.decode()
            if not _MERCHANT_ID.match(text):
                raise InvalidArgument(
                    "x-merchant-id must be 1-64 characters of [A-Za-z0-9_-]",
                    field=MERCHANT_METADATA_KEY,
                )
            return text
    raise Unauthenticated(
        "missing x-merchant-id metadata: every call acts for one merchant",
        field=MERCHANT_METADATA_KEY,
    )

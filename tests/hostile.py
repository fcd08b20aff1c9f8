"""What the hostile-input tests of every service send, and how they check nothing was stored."""

from collections.abc import Awaitable
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from tests.conftest import field_violation

# Over the servers' 32 MiB receive limit.
OVERSIZED = 33 * 1024 * 1024
TEN_MB = 10 * 1024 * 1024
SQL = "'; DROP TABLE {table}; --"
SCRIPT = "<script>alert(1)</script>"
# Decimal strings no money or quantity field may take, whatever its bounds.
BAD_DECIMALS = ("NaN", "Infinity", "-Infinity", "-1", "0.0000000000001", "9" * 40, "1e400")
GARBAGE = (
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a varint that never ends
    b"\x0a\xff\x01",  # a length past the end of the message
    b"\x07",  # wire type 7 does not exist
)


def method(service: ServiceDescriptor, name: str) -> str:
    """The HTTP/2 path of an RPC: /billing.metering.v1.MeteringService/RecordUsageEvent."""
    return f"/{service.full_name}/{service.methods_by_name[name].name}"


async def call_raw(
    channel: grpc.aio.Channel, path: str, payload: bytes, merchant_id: str
) -> grpc.aio.AioRpcError:
    """Sends `payload` as the request bytes of a unary RPC, unchecked; the call must fail."""
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        path, request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(payload, metadata=(("x-merchant-id", merchant_id),), timeout=30)
    return caught.value


def invalid_utf8(message: Message, placeholder: str) -> bytes:
    """`message` serialized with the bytes of `placeholder` (in a string field) made invalid
    UTF-8, as no protobuf library would write them."""
    data = message.SerializeToString()
    encoded = placeholder.encode()
    assert data.count(encoded) == 1, "the placeholder must occur once"
    return data.replace(encoded, b"\xff" * len(encoded))


async def refused(
    call: Awaitable[Any], code: grpc.StatusCode, field: str | None = None
) -> grpc.aio.AioRpcError:
    """Awaits an RPC that must fail with `code`, naming `field` in its BadRequest details."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == code, error.details()
    if field is not None:
        named = field_violation(error)
        assert named == field, f"{named!r} named instead of {field!r}"
    return error


async def stored_rows(db: asyncpg.Connection, schema: str, merchant_id: str) -> dict[str, int]:
    """Rows of the merchant in every table of a service's schema."""
    tables = await db.fetch(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = $1 AND column_name = 'merchant_id' ORDER BY table_name",
        schema,
    )
    assert tables
    counts = {}
    for (table,) in tables:
        counts[table] = await db.fetchval(
            f'SELECT count(*) FROM {schema}."{table}" WHERE merchant_id = $1', merchant_id
        )
    return counts

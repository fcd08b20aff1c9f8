"""A request body read within its size limit (413 beyond) and parsed as JSON: every number exact
(Decimal) and bounded, nesting bounded, every key once. A refusal answers 400 naming where in the
body it is (keys joined by dots, as the field errors of the schemas name them).

Numbers are bounded while they are parsed, before anything formats them: a short token such as
1e100000000 would otherwise become a 100-million-digit string on its way to a service."""

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request
from starlette.types import Receive, Scope

from gateway.errors import ApiError
from gateway.schemas import NUMBER_BOUND, fits
from service_kit.decimals import MAX_DECIMAL_TEXT

# Objects and arrays inside one another, the outermost included: more than any request schema
# needs (a plan's tiers sit four levels down).
MAX_DEPTH = 32
# A JSON string, or the rest of the body after an unterminated one: a match never fails, so the
# scan stays linear whatever the quotes and backslashes.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENING = frozenset(b"[{")


class _Unbounded:
    """Stands for a number out of bounds until the walk names where it is."""


class _RepeatedKey(dict[str, Any]):
    """An object that named `key` more than once."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.key = key


def _number(token: str) -> Decimal | _Unbounded:
    if len(token) > MAX_DECIMAL_TEXT:
        return _Unbounded()
    try:
        value = Decimal(token)
    except InvalidOperation:  # an exponent beyond what Decimal holds at all
        return _Unbounded()
    return value if fits(value) else _Unbounded()


def _integer(token: str) -> int | _Unbounded:
    # Before int(): Python refuses to convert more than 4,300 digits.
    return int(token) if len(token) <= MAX_DECIMAL_TEXT else _Unbounded()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            return _RepeatedKey(pairs, key)
        found[key] = value
    return found


def _nests_too_deep(body: bytes) -> bool:
    """Whether objects and arrays (outside strings) nest deeper than MAX_DEPTH. Checked before
    parsing: the parser recurses once per level, and where the recursion limit was raised (test
    runners do) 100,000 levels overflow the C stack instead of raising RecursionError."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in _OPENING else -1
        if depth > MAX_DEPTH:
            return True
    return False


def parse_exact_json(body: bytes) -> Any:
    """The body's JSON value; NaN and Infinity, numbers out of bounds, repeated keys and nesting
    deeper than MAX_DEPTH are refused."""
    if _nests_too_deep(body):
        raise ApiError(
            400,
            "invalid_request_error",
            "invalid_json",
            f"the body nests objects and arrays more than {MAX_DEPTH} deep",
        )
    try:
        value = json.loads(
            body,
            parse_float=_number,
            parse_int=_integer,
            parse_constant=_refuse_constant,
            object_pairs_hook=_object,
        )
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(
            400, "invalid_request_error", "invalid_json", f"the body is not valid JSON: {error}"
        ) from None
    _refuse_what_was_marked(value, [])
    return value


def _refuse_what_was_marked(value: Any, path: list[str]) -> None:
    """Raises for the first marked number or object, naming where it is; the recursion is as
    deep as the body nests, at most MAX_DEPTH."""
    if isinstance(value, _Unbounded):
        field = ".".join(path)
        raise ApiError(
            400,
            "invalid_request_error",
            "invalid_field",
            f"{field or 'body'}: {NUMBER_BOUND}",
            field,
        )
    if isinstance(value, _RepeatedKey):
        field = ".".join([*path, value.key])
        raise ApiError(
            400,
            "invalid_request_error",
            "duplicate_key",
            f"{field} appears more than once in its object",
            field,
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_what_was_marked(item, [*path, key])
    elif isinstance(value, list):
        for item in value:
            _refuse_what_was_marked(item, path)


class ExactJsonRequest(Request):
    """A request whose body was read and parsed before FastAPI looks at it: FastAPI validates the
    route's typed body against `json()`, our exact value, never its own float parse. An empty
    body reads as the empty object, so a schema whose fields all have defaults needs none."""

    def __init__(self, scope: Scope, receive: Receive, sent: bytes) -> None:
        super().__init__(scope, receive)
        self.sent = sent
        self._value = parse_exact_json(sent) if sent else {}

    async def body(self) -> bytes:
        return self.sent or b"{}"

    async def json(self) -> Any:
        return self._value


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is declared or read beyond `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, "invalid_request_error", "body_too_large", f"the body is larger than {limit} bytes"
    )

"""Requests that cannot be stored as sent: bytes that are no protobuf message of the method's
type (invalid UTF-8 in a string field among them), and NUL characters, which PostgreSQL text
refuses. Both become INVALID_ARGUMENT instead of an UNKNOWN or INTERNAL error."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from service_kit.errors import InvalidArgument


@dataclass(frozen=True)
class Refused:
    """Stands for a request the deserializer refused, until the handler raises it."""

    error: InvalidArgument


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A request deserializer that returns `Refused` instead of raising."""
    if deserializer is None:
        return None
    parse = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            message = parse(data)
        except Exception as error:
            return Refused(InvalidArgument(f"the request is not a valid message: {error}"))
        # A NUL byte in the wire form is rare: only then are the strings looked at.
        if b"\x00" in data and isinstance(message, Message):
            field = _nul_field(message, "")
            if field:
                return Refused(InvalidArgument(f"{field} contains a NUL character", field=field))
        return message

    return deserialize


def checked(request: Any) -> Any:
    """The request, or its refusal raised."""
    if isinstance(request, Refused):
        raise request.error
    return request


async def checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield checked(request)


def _nul_field(message: Message, prefix: str) -> str:
    """The path of the first string field holding a NUL ("events[2].user_id"); "" if none."""
    for descriptor, value in message.ListFields():
        path = f"{prefix}{descriptor.name}"
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if "\x00" in str(key) or (isinstance(item, str) and "\x00" in item):
                    return path
                if isinstance(item, Message) and (found := _nul_field(item, f"{path}.")):
                    return found
            continue
        items = value if descriptor.is_repeated else [value]
        for index, item in enumerate(items):
            where = f"{path}[{index}]" if descriptor.is_repeated else path
            if descriptor.type == FieldDescriptor.TYPE_STRING and "\x00" in item:
                return where
            if isinstance(item, Message) and (found := _nul_field(item, f"{where}.")):
                return found
    return ""

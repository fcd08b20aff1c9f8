"""Requests that cannot be stored as sent: bytes that are no protobuf message of the method's
type (invalid UTF-8 in a string field among them), and NUL characters, which PostgreSQL text
refuses. Both become INVALID_ARGUMENT instead of an UNKNOWN or INTERNAL error."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
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
        # A zero byte in the wire form is rare (an empty map value, an empty message set): only
        # then are the strings looked at, some 10 us an event of a batch.
        if b"\x00" in data and isinstance(message, Message):
            field = _nul_field(message)
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


def _nul_field(message: Message) -> str:
    """The path of the first string field holding a NUL ("events[2].user_id"); "" if none."""
    strings, maps, messages = _plan(message.DESCRIPTOR)
    for name in strings:
        value = getattr(message, name)
        if isinstance(value, str):
            if "\x00" in value:
                return name
        else:
            for index, item in enumerate(value):
                if "\x00" in item:
                    return f"{name}[{index}]"
    for name in maps:
        entries = getattr(message, name)
        if entries and "\x00" in "".join(f"{key}{item}" for key, item in entries.items()):
            return name
    for name, repeated in messages:
        if repeated:
            for index, item in enumerate(getattr(message, name)):
                if found := _nul_field(item):
                    return f"{name}[{index}].{found}"
        elif message.HasField(name) and (found := _nul_field(getattr(message, name))):
            return f"{name}.{found}"
    return ""


@cache
def _plan(descriptor: Descriptor) -> tuple[list[str], list[str], list[tuple[str, bool]]]:
    """A message type's string fields, maps, and message fields (with whether repeated): worked
    out once per type, so a batch of 10,000 events is looked through in milliseconds."""
    strings, maps, messages = [], [], []
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            maps.append(field.name)
        elif field.message_type is not None:
            messages.append((field.name, field.is_repeated))
        elif field.type == FieldDescriptor.TYPE_STRING:
            strings.append(field.name)
    return strings, maps, messages

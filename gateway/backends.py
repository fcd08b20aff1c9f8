"""The gateway's gRPC clients of the three services, with deadlines and error mapping."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2_grpc
from billing.settlement.v1 import settlement_pb2_grpc
from gateway.errors import from_grpc
from gateway.settings import GatewaySettings
from service_kit.channels import open_channel
from service_kit.tenancy import MERCHANT_METADATA_KEY

T = TypeVar("T")


class Backends:
    def __init__(self, settings: GatewaySettings) -> None:
        self.credentials = settings.service_credentials()
        self._channels = [
            open_channel(address, self.credentials)
            for address in (
                settings.metering_address,
                settings.invoicing_address,
                settings.settlement_address,
            )
        ]
        self.metering = metering_pb2_grpc.MeteringServiceStub(self._channels[0])
        self.invoicing = invoicing_pb2_grpc.InvoicingServiceStub(self._channels[1])
        self.settlement = settlement_pb2_grpc.SettlementServiceStub(self._channels[2])
        self.deadline = settings.backend_deadline_seconds

    async def call(
        self, method: Callable[..., Awaitable[T]], request: Message, merchant_id: str | None
    ) -> T:
        """One RPC on behalf of a merchant (None only for an RPC scoped to none, such as
        LocateInvoice); a gRPC failure becomes the matching ApiError.

        The call waits (within its deadline) for a backend that is reconnecting, so a restarted
        service is used as soon as it is back instead of failing fast until the channel's next
        reconnect attempt; a service that stays away answers 503 at the deadline."""
        try:
            return await method(
                request,
                metadata=((MERCHANT_METADATA_KEY, merchant_id),) if merchant_id is not None else (),
                timeout=self.deadline,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise from_grpc(error) from None

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


def _enum_prefix(enum: EnumDescriptor) -> str:
    """AGGREGATION_ for Aggregation, PRICING_TYPE_ for PricingType."""
    return "".join(f"_{c}" if c.isupper() else c.upper() for c in enum.name).lstrip("_") + "_"


def _strip_enums(descriptor: Any, data: dict[str, Any]) -> dict[str, Any]:
    for field in descriptor.fields:
        value = data.get(field.json_name)
        if value is None:
            continue
        if field.enum_type is not None:
            prefix = _enum_prefix(field.enum_type)
            data[field.json_name] = (
                [v.removeprefix(prefix) for v in value]
                if isinstance(value, list)
                else _enum_value(value, prefix)
            )
        elif field.message_type is not None and field.message_type.GetOptions().map_entry is False:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):
                    _strip_enums(field.message_type, item)
    return data


def _enum_value(name: str, prefix: str) -> str | None:
    """ "OPEN" for INVOICE_STATUS_OPEN; None for an unset enum (its *_UNSPECIFIED zero)."""
    short = name.removeprefix(prefix)
    return None if short == "UNSPECIFIED" else short


def to_json(message: Message) -> dict[str, Any]:
    """A message in the API's JSON: camelCase, every field present, enums without their prefix
    ("OPEN", not "INVOICE_STATUS_OPEN")."""
    data = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    return _strip_enums(message.DESCRIPTOR, data)

"""Meter use cases."""

import re
from datetime import datetime

from metering_svc.domain.model import Aggregation, Meter
from metering_svc.service_layer.unit_of_work import Metering
from service_kit import pagination
from service_kit.errors import AlreadyExists, InvalidArgument, NotFound
from service_kit.idempotency import RequestKey
from service_kit.identifiers import require_identifier
from service_kit.ids import new_id

_PROPERTY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
MAX_DISPLAY_NAME = 200


def new_meter(
    *,
    merchant_id: str,
    service_id: str,
    event_key: str,
    aggregation: Aggregation | None,
    unique_property: str,
    display_name: str,
    now: datetime,
) -> Meter:
    require_identifier(service_id, "meter.service_id")
    require_identifier(event_key, "meter.event_key")
    if aggregation is None:
        raise InvalidArgument("meter.aggregation is required", field="meter.aggregation")
    if aggregation is Aggregation.UNIQUE_COUNT:
        if not _PROPERTY.match(unique_property):
            raise InvalidArgument(
                "a UNIQUE_COUNT meter names the property it counts (1-64 characters)",
                field="meter.unique_property",
            )
    elif unique_property:
        raise InvalidArgument(
            "unique_property is only for UNIQUE_COUNT meters", field="meter.unique_property"
        )
    if len(display_name) > MAX_DISPLAY_NAME:
        raise InvalidArgument(
            f"display_name is longer than {MAX_DISPLAY_NAME} characters", field="meter.display_name"
        )
    return Meter(
        id=new_id("mtr"),
        merchant_id=merchant_id,
        service_id=service_id,
        event_key=event_key,
        aggregation=aggregation,
        unique_property=unique_property,
        display_name=display_name or event_key,
        create_time=now,
    )


async def create_meter(metering: Metering, meter: Meter, request: RequestKey | None) -> Meter:
    """Stores a new meter; ALREADY_EXISTS when the service has one for the event key.
    A retry with the same request id returns the meter the first call created."""
    async with metering.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, meter.merchant_id, request)
        if first_id is not None:
            created = await uow.meters.get(meter.merchant_id, first_id)
            assert created is not None
            return created
        if not await uow.meters.add(meter):
            raise AlreadyExists(
                f"service {meter.service_id} already has a meter for {meter.event_key}",
                field="meter.event_key",
            )
        await uow.idempotency.remember(uow.session, meter.merchant_id, request, meter.id)
        await uow.commit()
    return meter


async def get_meter(metering: Metering, merchant_id: str, meter_id: str) -> Meter:
    async with metering.unit_of_work() as uow:
        meter = await uow.meters.get(merchant_id, meter_id)
    if meter is None:
        raise NotFound(f"meter {meter_id} not found", field="id")
    return meter


async def list_meters(
    metering: Metering, merchant_id: str, service_id: str, size: int, token: str
) -> tuple[list[Meter], str]:
    limit = pagination.page_size(size)
    after = pagination.creation_position(token)
    async with metering.unit_of_work() as uow:
        meters = await uow.meters.list(merchant_id, service_id or None, after, limit + 1)
    return pagination.cut_page(meters, limit, lambda meter: (meter.create_time, meter.id))

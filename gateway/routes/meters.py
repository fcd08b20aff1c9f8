"""Meters: how a service's usage events of one key are aggregated."""

from typing import Annotated, Any

from fastapi import Query

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.metering.v1 import metering_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.errors import ApiError
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import MeterCreate

router = merchant_router("meters")


@router.post("/meters", **r.documented(r.Meter, 404, 409))
async def create_meter(merchant: Merchant, payload: MeterCreate) -> Any:
    """The meter of one of the merchant's services: a service that does not exist, or is another
    merchant's, is 404 naming serviceId. Invoicing owns services and none is ever deleted, so
    asking it once before the meter is made is as good as a replica in metering would be."""

    async def create() -> dict[str, Any]:
        try:
            await merchant.call(
                merchant.gateway.backends.invoicing.GetService,
                ipb.GetServiceRequest(id=payload.service_id),
            )
        except ApiError as error:
            if error.status == 404:
                error.param = "serviceId"
            raise
        meter = pb.Meter(
            service_id=payload.service_id,
            event_key=payload.event_key,
            aggregation=pb.Aggregation.Value(f"AGGREGATION_{payload.aggregation}"),
            unique_property=payload.unique_property,
            display_name=payload.display_name,
        )
        stub = merchant.gateway.backends.metering
        return to_json(await merchant.call(stub.CreateMeter, pb.CreateMeterRequest(meter=meter)))

    return await merchant.created(create)


@router.get("/meters", **r.documented(r.Page[r.Meter], 404))
async def list_meters(
    merchant: Merchant,
    service_id: Annotated[str, Query(alias="serviceId", max_length=128)] = "",
    limit: Limit = 10,
    starting_after: StartingAfter = "",
) -> Any:
    stub = merchant.gateway.backends.metering
    request = pb.ListMetersRequest(
        service_id=service_id, page_size=limit, page_token=starting_after
    )
    found = await merchant.call(stub.ListMeters, request)
    return page([to_json(m) for m in found.meters], found.next_page_token)


@router.get("/meters/{meter_id}", **r.documented(r.Meter, 404))
async def get_meter(merchant: Merchant, meter_id: str) -> Any:
    stub = merchant.gateway.backends.metering
    return to_json(await merchant.call(stub.GetMeter, pb.GetMeterRequest(id=meter_id)))

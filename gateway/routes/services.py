"""Services: what a merchant sells; plans and meters belong to one."""

from typing import Any

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import ServiceCreate

router = merchant_router("services")


@router.post("/services", **r.documented(r.Service, 409))
async def create_service(merchant: Merchant, payload: ServiceCreate) -> Any:
    async def create() -> dict[str, Any]:
        service = pb.Service(name=payload.name, description=payload.description)
        stub = merchant.gateway.backends.invoicing
        return to_json(
            await merchant.call(stub.CreateService, pb.CreateServiceRequest(service=service))
        )

    return await merchant.created(create)


@router.get("/services", **r.documented(r.Page[r.Service]))
async def list_services(
    merchant: Merchant, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    stub = merchant.gateway.backends.invoicing
    found = await merchant.call(
        stub.ListServices, pb.ListServicesRequest(page_size=limit, page_token=starting_after)
    )
    return page([to_json(s) for s in found.services], found.next_page_token)


@router.get("/services/{service_id}", **r.documented(r.Service, 404))
async def get_service(merchant: Merchant, service_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    return to_json(await merchant.call(stub.GetService, pb.GetServiceRequest(id=service_id)))

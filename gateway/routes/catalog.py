"""Services and their plans."""

from typing import Any

from fastapi import APIRouter

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.openapi_bodies import body
from gateway.routes import Limit, Merchant, StartingAfter, page
from gateway.schemas import PlanCreate, ServiceCreate, text

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.post("/services", openapi_extra=body(ServiceCreate), **r.documented(r.Service, 409))
async def create_service(merchant: Merchant) -> Any:
    payload = merchant.parse(ServiceCreate)

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


@router.post(
    "/services/{service_id}/plans", openapi_extra=body(PlanCreate), **r.documented(r.Plan, 404, 409)
)
async def create_plan(merchant: Merchant, service_id: str) -> Any:
    payload = merchant.parse(PlanCreate)

    async def create() -> dict[str, Any]:
        plan = pb.Plan(
            service_id=service_id,
            name=payload.name,
            pricing_type=pb.PricingType.Value(f"PRICING_TYPE_{payload.pricing_type}"),
            billing_interval=pb.BillingInterval.Value(
                f"BILLING_INTERVAL_{payload.billing_interval}"
            ),
            interval_count=payload.interval_count,
            amount=text(payload.amount),
            charges=[
                pb.UsageCharge(
                    event_key=c.event_key,
                    model=pb.ChargeModel.Value(f"CHARGE_MODEL_{c.model}"),
                    unit_price=text(c.unit_price),
                    package_size=text(c.package_size),
                    included_quantity=text(c.included_quantity),
                    tiers=[
                        pb.Tier(
                            up_to=text(t.up_to),
                            unit_price=text(t.unit_price),
                            flat_fee=text(t.flat_fee),
                        )
                        for t in c.tiers
                    ],
                )
                for c in payload.charges
            ],
        )
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.CreatePlan, pb.CreatePlanRequest(plan=plan)))

    return await merchant.created(create)


@router.get("/services/{service_id}/plans", **r.documented(r.Page[r.Plan], 404))
async def list_plans(
    merchant: Merchant, service_id: str, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    stub = merchant.gateway.backends.invoicing
    request = pb.ListPlansRequest(service_id=service_id, page_size=limit, page_token=starting_after)
    found = await merchant.call(stub.ListPlans, request)
    return page([to_json(p) for p in found.plans], found.next_page_token)


@router.get("/plans/{plan_id}", **r.documented(r.Plan, 404))
async def get_plan(merchant: Merchant, plan_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    return to_json(await merchant.call(stub.GetPlan, pb.GetPlanRequest(id=plan_id)))

"""Plans: a service's prices."""

from collections.abc import Sequence
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.errors import ApiError
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import (
    ChargeIn,
    PlanCreate,
    PlanMigrationCreate,
    PlanUpdate,
    PlanVersionCreate,
    UsageLimitIn,
    text,
)

router = merchant_router("plans")


def limit_messages(limits: list[UsageLimitIn]) -> list[pb.UsageLimit]:
    return [
        pb.UsageLimit(
            event_key=u.event_key,
            quantity=text(u.quantity),
            enforcement=pb.LimitEnforcement.Value(f"LIMIT_ENFORCEMENT_{u.enforcement}"),
        )
        for u in limits
    ]


def charge_messages(charges: Sequence[ChargeIn]) -> list[pb.UsageCharge]:
    return [
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
        for c in charges
    ]


def plan_message(service_id: str, payload: PlanCreate) -> pb.Plan:
    return pb.Plan(
        service_id=service_id,
        name=payload.name,
        pricing_type=pb.PricingType.Value(f"PRICING_TYPE_{payload.pricing_type}"),
        billing_interval=pb.BillingInterval.Value(f"BILLING_INTERVAL_{payload.billing_interval}"),
        interval_count=payload.interval_count,
        amount=text(payload.amount),
        charges=charge_messages(payload.charges),
        usage_ceiling=text(payload.usage_ceiling),
        features=payload.features,
        limits=limit_messages(payload.limits),
        prepaid_only=payload.prepaid_only,
        trial_days=payload.trial_days,
        trial_usage_billed=payload.trial_usage_billed,
        trial_end_action=pb.TrialEndAction.Value(f"TRIAL_END_ACTION_{payload.trial_end_action}"),
    )


@router.post("/services/{service_id}/plans", **r.documented(r.Plan, 404, 409))
async def create_plan(merchant: Merchant, service_id: str, payload: PlanCreate) -> Any:
    async def create() -> dict[str, Any]:
        request = pb.CreatePlanRequest(plan=plan_message(service_id, payload))
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.CreatePlan, request))

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


@router.patch("/plans/{plan_id}", **r.documented(r.Plan, 404))
async def update_plan(merchant: Merchant, plan_id: str, payload: PlanUpdate) -> Any:
    """Changes the fields present (at least one); prices never change.

    `usageCeiling`: the most usage a period may add above the fee under an auto-pay mandate
    (USDC, at most 6 decimals). It bounds the mandates the hosted checkout proposes from now on;
    mandates already signed keep their cap.

    `features` and `limits` replace the plan's entitlements (an empty list removes them all);
    metering enforces the new ones for every subscription of the plan at once."""
    paths = [
        name
        for name, value in (
            ("usage_ceiling", payload.usage_ceiling),
            ("features", payload.features),
            ("limits", payload.limits),
        )
        if value is not None
    ]
    if not paths:
        raise ApiError(
            400,
            "invalid_request_error",
            "invalid_field",
            "give at least one of usageCeiling, features and limits",
            "usageCeiling",
        )
    request = pb.UpdatePlanRequest(
        plan=pb.Plan(
            id=plan_id,
            usage_ceiling=text(payload.usage_ceiling),
            features=payload.features or [],
            limits=limit_messages(payload.limits or []),
        ),
        update_mask=FieldMask(paths=paths),
    )
    stub = merchant.gateway.backends.invoicing
    return await merchant.created(lambda: merchant.answer(stub.UpdatePlan, request))


@router.post("/plans/{plan_id}/versions", **r.documented(r.Plan, 400, 404, 409))
async def create_plan_version(merchant: Merchant, plan_id: str, payload: PlanVersionCreate) -> Any:
    """The next version of the plan (its latest; 409 otherwise, and for a prepaid-only plan)
    with new `amount` and `charges`: a new plan, everything else kept. Its subscriptions stay on
    their version until migrated; checkouts of any version get the latest."""

    async def create() -> dict[str, Any]:
        request = pb.CreatePlanVersionRequest(
            plan_id=plan_id,
            amount=text(payload.amount),
            charges=charge_messages(payload.charges),
            request_id=merchant.request_id(),
        )
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.CreatePlanVersion, request))

    return await merchant.created(create)


@router.post("/plans/{plan_id}/migrations", **r.documented(r.PlanMigration, 400, 404))
async def migrate_plan_subscriptions(
    merchant: Merchant, plan_id: str, payload: PlanMigrationCreate
) -> Any:
    """Moves up to `limit` of the version's subscriptions (oldest first, after
    `startingAfter`) to `toPlanId` (default the latest version) at their next period; with
    `"dryRun": true` changes nothing. Each shows its next invoice on both versions, priced on
    the current period's usage so far."""

    async def migrate() -> dict[str, Any]:
        request = pb.MigratePlanSubscriptionsRequest(
            plan_id=plan_id,
            to_plan_id=payload.to_plan_id,
            dry_run=payload.dry_run,
            page_size=payload.limit,
            page_token=payload.starting_after,
        )
        stub = merchant.gateway.backends.invoicing
        found = await merchant.call(stub.MigratePlanSubscriptions, request)
        answer = page([to_json(m) for m in found.migrations], found.next_page_token)
        return {"toPlanId": found.to_plan_id, **answer}

    return await merchant.created(migrate)

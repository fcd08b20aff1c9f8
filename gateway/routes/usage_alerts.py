"""Usage alerts: thresholds on a plan's subscriptions or on one, and the crossings invoicing
recorded (each also sent as a webhook, once per billing period)."""

from typing import Annotated, Any

from fastapi import Query

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import UsageAlertCreate, text

router = merchant_router("usage alerts")


@router.post("/usage-alerts", **r.documented(r.UsageAlert, 404, 409))
async def create_usage_alert(merchant: Merchant, payload: UsageAlertCreate) -> Any:
    """`planId` (each of its subscriptions) or `subscriptionId`, exactly one; `kind`;
    `eventKey` (USAGE_QUANTITY and INCLUDED_SHARE only); `threshold` (> 0, >= 0 for BALANCE:
    units, percent or USDC by kind); `action` NOTIFY (default) or, for SPEND, INVOICE. Each
    crossing is recorded and sent as a webhook once per billing period."""

    async def create() -> dict[str, Any]:
        alert = pb.UsageAlert(
            plan_id=payload.plan_id,
            subscription_id=payload.subscription_id,
            kind=pb.UsageAlertKind.Value(f"USAGE_ALERT_KIND_{payload.kind}"),
            event_key=payload.event_key,
            threshold=text(payload.threshold),
            action=pb.UsageAlertAction.Value(
                f"USAGE_ALERT_ACTION_{payload.action or 'UNSPECIFIED'}"
            ),
        )
        request = pb.CreateUsageAlertRequest(alert=alert, request_id=merchant.request_id())
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.CreateUsageAlert, request))

    return await merchant.created(create)


@router.get("/usage-alerts", **r.documented(r.Page[r.UsageAlert]))
async def list_usage_alerts(
    merchant: Merchant,
    plan_id: Annotated[str, Query(alias="planId", max_length=128)] = "",
    subscription_id: Annotated[str, Query(alias="subscriptionId", max_length=128)] = "",
    limit: Limit = 10,
    starting_after: StartingAfter = "",
) -> Any:
    """Oldest first; `planId` or `subscriptionId` narrows the list to that one's alerts."""
    request = pb.ListUsageAlertsRequest(
        plan_id=plan_id, subscription_id=subscription_id, page_size=limit, page_token=starting_after
    )
    stub = merchant.gateway.backends.invoicing
    found = await merchant.call(stub.ListUsageAlerts, request)
    return page([to_json(a) for a in found.alerts], found.next_page_token)


@router.get("/usage-alerts/{alert_id}", **r.documented(r.UsageAlert, 404))
async def get_usage_alert(merchant: Merchant, alert_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    return await merchant.answer(stub.GetUsageAlert, pb.GetUsageAlertRequest(id=alert_id))


@router.delete("/usage-alerts/{alert_id}", **r.documented(r.UsageAlertDeleted, 404))
async def delete_usage_alert(merchant: Merchant, alert_id: str) -> Any:
    """No crossing of it is recorded from then on; those recorded stay."""
    stub = merchant.gateway.backends.invoicing
    await merchant.call(stub.DeleteUsageAlert, pb.DeleteUsageAlertRequest(id=alert_id))
    return {"id": alert_id, "deleted": True}


@router.get(
    "/subscriptions/{subscription_id}/alert-crossings",
    **r.documented(r.Page[r.UsageAlertCrossing], 404),
)
async def list_usage_alert_crossings(
    merchant: Merchant, subscription_id: str, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    """The crossings of the subscription's alerts (its plan's and its own), oldest first."""
    request = pb.ListUsageAlertCrossingsRequest(
        subscription_id=subscription_id, page_size=limit, page_token=starting_after
    )
    stub = merchant.gateway.backends.invoicing
    found = await merchant.call(stub.ListUsageAlertCrossings, request)
    return page([to_json(c) for c in found.crossings], found.next_page_token)

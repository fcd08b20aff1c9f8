"""Entitlement checks for merchants' hot paths: may this customer use a feature, or make one
more call?"""

from typing import Annotated, Any

from fastapi import Query

from billing.metering.v1 import metering_pb2 as pb
from gateway import responses as r
from gateway.routes import Merchant, merchant_router

router = merchant_router("entitlements")
Identifier = Annotated[str, Query(max_length=128)]


@router.get("/entitlements/check", **r.documented(r.EntitlementCheck, 404))
async def check_entitlement(
    merchant: Merchant,
    subscription_id: Annotated[Identifier, Query(alias="subscriptionId", min_length=1)],
    event_key: Annotated[Identifier, Query(alias="eventKey")] = "",
    feature: Identifier = "",
    quantity: Annotated[str, Query(max_length=64)] = "",
) -> Any:
    """Whether the subscription's plan includes `feature`, or lets it use `quantity` (default 1)
    more of `eventKey` in its billing period: `allowed`, the `reason`, and the limit's `used` and
    `remaining`. Give exactly one of `feature` and `eventKey`. Answered by metering alone, from
    what it holds (events another metering replica recorded show within a second); a HARD
    limit is also enforced when events are recorded, exactly."""
    request = pb.CheckEntitlementRequest(
        subscription_id=subscription_id, event_key=event_key, feature=feature, quantity=quantity
    )
    return await merchant.answer(merchant.gateway.backends.metering.CheckEntitlement, request)

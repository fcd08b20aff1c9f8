"""Subscriptions: a user on a plan, billed period by period."""

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import Query

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.settlement.v1 import settlement_pb2 as spb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import (
    AutoTopUpUpdate,
    SubscriptionCancel,
    SubscriptionPlanChange,
    TestClockAdvance,
    text,
)

router = merchant_router("subscriptions")


@router.get("/subscriptions", **r.documented(r.Page[r.Subscription]))
async def list_subscriptions(
    merchant: Merchant,
    status: Literal["ACTIVE", "PAST_DUE", "PAUSED", "CANCELED"] | None = None,
    user_id: Annotated[str, Query(alias="userId", max_length=128)] = "",
    plan_id: Annotated[str, Query(alias="planId", max_length=128)] = "",
    service_id: Annotated[str, Query(alias="serviceId", max_length=128)] = "",
    limit: Limit = 10,
    starting_after: StartingAfter = "",
) -> Any:
    """Oldest first; each filter given narrows the list."""
    request = pb.ListSubscriptionsRequest(
        status=pb.SubscriptionStatus.Value(f"SUBSCRIPTION_STATUS_{status or 'UNSPECIFIED'}"),
        user_id=user_id,
        plan_id=plan_id,
        service_id=service_id,
        page_size=limit,
        page_token=starting_after,
    )
    stub = merchant.gateway.backends.invoicing
    found = await merchant.call(stub.ListSubscriptions, request)
    return page([to_json(s) for s in found.subscriptions], found.next_page_token)


@router.get("/subscriptions/{subscription_id}", **r.documented(r.Subscription, 404))
async def get_subscription(merchant: Merchant, subscription_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    return to_json(
        await merchant.call(stub.GetSubscription, pb.GetSubscriptionRequest(id=subscription_id))
    )


@router.get("/subscriptions/{subscription_id}/mandate", **r.documented(r.Mandate, 404))
async def get_subscription_mandate(merchant: Merchant, subscription_id: str) -> Any:
    """The subscription's newest auto-pay mandate, in the state the chain last showed."""
    stub = merchant.gateway.backends.settlement
    request = spb.GetMandateRequest(subscription_id=subscription_id)
    return to_json(await merchant.call(stub.GetMandate, request))


@router.get("/subscriptions/{subscription_id}/balance", **r.documented(r.SubscriptionBalance, 404))
async def get_subscription_balance(merchant: Merchant, subscription_id: str) -> Any:
    """The customer's credits less what the current period has consumed so far, priced as its
    invoice would be (tiers included), from the usage acknowledged until now."""
    stub = merchant.gateway.backends.invoicing
    request = pb.GetSubscriptionBalanceRequest(subscription_id=subscription_id)
    return to_json(await merchant.call(stub.GetSubscriptionBalance, request))


@router.get("/subscriptions/{subscription_id}/auto-top-up", **r.documented(r.AutoTopUp, 404))
async def get_auto_top_up(merchant: Merchant, subscription_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    request = pb.GetAutoTopUpRequest(subscription_id=subscription_id)
    return to_json(await merchant.call(stub.GetAutoTopUp, request))


@router.post("/subscriptions/{subscription_id}/auto-top-up", **r.documented(r.AutoTopUp, 404))
async def set_auto_top_up(
    merchant: Merchant, subscription_id: str, payload: AutoTopUpUpdate
) -> Any:
    """Whenever the customer's credit balance falls below `threshold` (and at once when it is
    below already), a top-up invoice of `amount` is finalized, which its auto-pay mandate
    collects; never two unpaid at a time. `"enabled": false` removes it."""

    async def change() -> dict[str, Any]:
        request = pb.SetAutoTopUpRequest(subscription_id=subscription_id, enabled=payload.enabled)
        if payload.enabled:
            request.threshold, request.amount = text(payload.threshold), text(payload.amount)
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.SetAutoTopUp, request))

    return await merchant.created(change)


@router.post("/subscriptions/{subscription_id}/cancel", **r.documented(r.Subscription, 404, 409))
async def cancel_subscription(
    merchant: Merchant, subscription_id: str, payload: SubscriptionCancel
) -> Any:
    async def cancel() -> dict[str, Any]:
        stub = merchant.gateway.backends.invoicing
        request = pb.CancelSubscriptionRequest(
            id=subscription_id, at_period_end=payload.at_period_end
        )
        return to_json(await merchant.call(stub.CancelSubscription, request))

    return await merchant.created(cancel)


@router.post(
    "/subscriptions/{subscription_id}/change-plan",
    **r.documented(r.PlanChangeResult, 400, 404, 409),
)
async def change_subscription_plan(
    merchant: Merchant, subscription_id: str, payload: SubscriptionPlanChange
) -> Any:
    """Moves the subscription to another plan of its service. `NOW`: usage before the change is
    priced by the old plan and after it by the new one, as labelled lines of the period's
    invoice, and the fixed fee follows `prorationBehavior`. `PERIOD_END` (required for another
    billing interval): the next period is the new plan's; the current plan takes a scheduled
    change back. 409 for a canceled subscription, its own plan now, or a prepaid-only plan."""

    async def change() -> dict[str, Any]:
        request = pb.ChangeSubscriptionPlanRequest(
            id=subscription_id,
            plan_id=payload.plan_id,
            timing=pb.PlanChangeTiming.Value(f"PLAN_CHANGE_TIMING_{payload.timing}"),
            proration_behavior=pb.ProrationBehavior.Value(
                f"PRORATION_BEHAVIOR_{payload.proration_behavior}"
            ),
            request_id=merchant.request_id(),
        )
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.ChangeSubscriptionPlan, request))

    return await merchant.created(change)


@router.post("/subscriptions/{subscription_id}/pause", **r.documented(r.Subscription, 404, 409))
async def pause_subscription(merchant: Merchant, subscription_id: str) -> Any:
    """Pauses an ACTIVE subscription now: its period's invoice bills it up to now (a fee paid up
    front is credited for the rest, on the resumed period's invoices); until it resumes no
    period runs, no invoice is made and usage events are refused (409)."""

    async def pause() -> dict[str, Any]:
        stub = merchant.gateway.backends.invoicing
        request = pb.PauseSubscriptionRequest(id=subscription_id, request_id=merchant.request_id())
        return to_json(await merchant.call(stub.PauseSubscription, request))

    return await merchant.created(pause)


@router.post("/subscriptions/{subscription_id}/resume", **r.documented(r.Subscription, 404, 409))
async def resume_subscription(merchant: Merchant, subscription_id: str) -> Any:
    """Resumes a PAUSED subscription: a new billing period starts now, billed in arrears."""

    async def resume() -> dict[str, Any]:
        stub = merchant.gateway.backends.invoicing
        request = pb.ResumeSubscriptionRequest(id=subscription_id, request_id=merchant.request_id())
        return to_json(await merchant.call(stub.ResumeSubscription, request))

    return await merchant.created(resume)


@router.post(
    "/subscriptions/{subscription_id}/test-clock/advance",
    **r.documented(r.Subscription, 403, 404, 409),
)
async def advance_test_clock(
    merchant: Merchant, subscription_id: str, payload: TestClockAdvance
) -> Any:
    """Test mode only (403 unless INVOICING_TEST_CLOCK_ENABLED): moves the subscription's time
    forward and closes every billing period that ended by then."""

    async def advance() -> dict[str, Any]:
        request = pb.AdvanceTestClockRequest(subscription_id=subscription_id)
        request.advance_by.FromTimedelta(timedelta(seconds=payload.seconds))
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.AdvanceTestClock, request))

    return await merchant.created(advance)

"""The subscription lifecycle through the REST gateway on the whole platform (issue 18): a plan
change now splits the period into labelled lines of one invoice, a change at the period's end
moves the next period, pauses and resumes, trials; refusals carry their status and field, and an
Idempotency-Key replays the answer."""

from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.gateway.conftest import Api
from tests.gateway.test_rest_api import event, subscribe

DAY = 86_400


def refusal(response: httpx.Response) -> tuple[int, str, str | None]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["param"]


async def two_plans(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Starter (0.000010 a token) and Scale (0.000004) of one service, and a weekly plan."""
    service = (await api.post("/api/v1/services", {"name": "AI Token API"})).json()
    plans = []
    for name, price, interval in (
        ("Starter", "0.000010", "MONTH"),
        ("Scale", "0.000004", "MONTH"),
        ("Weekly", "0.000008", "WEEK"),
    ):
        created = await api.post(
            f"/api/v1/services/{service['id']}/plans",
            {
                "name": name,
                "pricingType": "USAGE_BASED",
                "billingInterval": interval,
                "amount": price,
            },
        )
        assert created.status_code == 200, created.text
        plans.append(created.json())
    return plans[0], plans[1], plans[2]


async def tokens(api: Api, subscription: dict[str, Any], quantity: int, at: str) -> None:
    posted = await api.post("/api/v1/usage-events", event(subscription, quantity, occurredAt=at))
    assert posted.status_code == 200, posted.text


async def advance(api: Api, subscription: dict[str, Any], seconds: int) -> dict[str, Any]:
    moved = await api.post(
        f"/api/v1/subscriptions/{subscription['id']}/test-clock/advance", {"seconds": seconds}
    )
    assert moved.status_code == 200, moved.text
    answer: dict[str, Any] = moved.json()
    return answer


def minutes(moment: str) -> str:
    return f"{datetime.fromisoformat(moment):%Y-%m-%d %H:%M}"


async def test_a_change_now_bills_each_plans_usage_on_one_invoice(api: Api) -> None:
    starter, scale, _ = await two_plans(api)
    subscription = await advance(api, await subscribe(api, starter), 3 * DAY)
    # Just before the change (an event at its very moment is the new plan's).
    before = datetime.fromisoformat(subscription["testClockTime"]) - timedelta(seconds=1)
    await tokens(api, subscription, 50_000, before.isoformat())

    changed = await api.post(
        f"/api/v1/subscriptions/{subscription['id']}/change-plan",
        {"planId": scale["id"]},
        **{"Idempotency-Key": "change-1"},
    )

    assert changed.status_code == 200, changed.text
    body = changed.json()
    at = subscription["testClockTime"]
    assert "invoice" not in body
    moved = body["subscription"]
    assert (moved["planId"], moved["feePlanId"], moved["scheduledPlanId"]) == (
        scale["id"],
        scale["id"],
        "",
    )
    assert moved["planSegments"] == [
        {"planId": starter["id"], "feePlanId": starter["id"], "endTime": at}
    ]
    again = await api.post(
        f"/api/v1/subscriptions/{subscription['id']}/change-plan",
        {"planId": scale["id"]},
        **{"Idempotency-Key": "change-1"},
    )
    assert again.json() == body
    await tokens(api, subscription, 100_000, at)
    end = subscription["currentPeriodEnd"]
    await advance(api, moved, 31 * DAY)

    invoices = (await api.get("/api/v1/invoices", subscriptionId=subscription["id"])).json()
    [invoice] = [
        i for i in invoices["data"] if i["periodStart"] == subscription["currentPeriodStart"]
    ]
    start = subscription["currentPeriodStart"]
    assert [(line["description"], line["amount"]) for line in invoice["lines"]] == [
        (f"Starter, {minutes(start)} to {minutes(at)} UTC: Usage: 50000 x 0.00001", "0.500000"),
        (f"Scale, {minutes(at)} to {minutes(end)} UTC: Usage: 100000 x 0.000004", "0.400000"),
    ]
    assert invoice["amount"] == "0.900000"


async def test_a_change_at_the_periods_end_and_the_refusals(api: Api) -> None:
    starter, scale, weekly = await two_plans(api)
    subscription = await subscribe(api, starter)
    path = f"/api/v1/subscriptions/{subscription['id']}/change-plan"

    assert refusal(await api.post(path, {"planId": weekly["id"]})) == (
        409,
        "failed_precondition",
        "timing",
    )
    assert refusal(await api.post(path, {"planId": starter["id"]})) == (
        409,
        "failed_precondition",
        "planId",
    )
    assert refusal(await api.post(path, {"planId": "plan_missing"})) == (
        404,
        "not_found",
        "planId",
    )
    assert refusal(await api.post(path, {"planId": scale["id"], "timing": "SOON"})) == (
        400,
        "invalid_field",
        "timing",
    )
    scheduled = await api.post(path, {"planId": weekly["id"], "timing": "PERIOD_END"})

    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["subscription"]["scheduledPlanId"] == weekly["id"]
    following = await advance(api, subscription, 31 * DAY)
    assert (following["planId"], following["scheduledPlanId"]) == (weekly["id"], "")
    assert following["currentPeriodStart"] == subscription["currentPeriodEnd"]


async def test_pause_and_resume_through_rest(api: Api) -> None:
    starter, _, _ = await two_plans(api)
    subscription = await advance(api, await subscribe(api, starter), 2 * DAY)
    path = f"/api/v1/subscriptions/{subscription['id']}"
    before = datetime.fromisoformat(subscription["testClockTime"]) - timedelta(seconds=1)
    await tokens(api, subscription, 30_000, before.isoformat())

    paused = await api.post(f"{path}/pause", {}, **{"Idempotency-Key": "pause-1"})

    assert paused.status_code == 200, paused.text
    assert (paused.json()["status"], paused.json()["pauseTime"]) == (
        "PAUSED",
        subscription["testClockTime"],
    )
    again = await api.post(f"{path}/pause", {}, **{"Idempotency-Key": "pause-1"})
    assert again.json() == paused.json()
    assert refusal(await api.post(f"{path}/pause", {})) == (409, "failed_precondition", "id")
    refused = await api.post("/api/v1/usage-events", event(subscription, 1))
    assert refused.status_code == 409
    [invoice] = (await api.get("/api/v1/invoices", subscriptionId=subscription["id"])).json()[
        "data"
    ]
    assert (invoice["amount"], invoice["periodEnd"]) == ("0.300000", subscription["testClockTime"])
    listed = await api.get("/api/v1/subscriptions", status="PAUSED")
    assert [s["id"] for s in listed.json()["data"]] == [subscription["id"]]

    resumed = await api.post(f"{path}/resume", {})

    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert (body["status"], body["currentPeriodStart"]) == ("ACTIVE", subscription["testClockTime"])
    assert "pauseTime" not in body
    assert refusal(await api.post(f"{path}/resume", {})) == (409, "failed_precondition", "id")


async def test_a_trial_through_rest(api: Api) -> None:
    service = (await api.post("/api/v1/services", {"name": "AI Token API"})).json()
    created = await api.post(
        f"/api/v1/services/{service['id']}/plans",
        {
            "name": "Pro",
            "pricingType": "FIXED_RECURRING",
            "billingInterval": "MONTH",
            "amount": "20",
            "trialDays": 7,
            "trialEndAction": "CANCEL",
        },
    )
    assert created.status_code == 200, created.text
    plan = created.json()
    assert (plan["trialDays"], plan["trialUsageBilled"], plan["trialEndAction"]) == (
        7,
        False,
        "CANCEL",
    )

    subscription = await subscribe(api, plan)

    start = datetime.fromisoformat(subscription["currentPeriodStart"])
    assert datetime.fromisoformat(subscription["trialEnd"]) == start + timedelta(days=7)
    assert subscription["currentPeriodEnd"] == subscription["trialEnd"]
    ended = await advance(api, subscription, 8 * DAY)
    assert (ended["status"], ended["cancelTime"]) == ("CANCELED", subscription["trialEnd"])
    too_long = await api.post(
        f"/api/v1/services/{service['id']}/plans",
        {
            "name": "P",
            "pricingType": "FIXED_RECURRING",
            "billingInterval": "MONTH",
            "amount": "1",
            "trialDays": 731,
        },
    )
    assert refusal(too_long) == (400, "invalid_field", "trialDays")


async def test_coupons_and_discounts_through_rest(api: Api) -> None:
    starter, _, _ = await two_plans(api)
    subscription = await advance(api, await subscribe(api, starter), DAY)
    before = datetime.fromisoformat(subscription["testClockTime"]) - timedelta(seconds=1)
    await tokens(api, subscription, 100_000, before.isoformat())
    made = await api.post("/api/v1/coupons", {"name": "Half", "percentOff": 50, "duration": "ONCE"})
    assert made.status_code == 200, made.text
    coupon = made.json()
    assert (coupon["percentOff"], coupon["amountOff"], coupon["timesRedeemed"]) == ("50", "", 0)

    applied = await api.post(
        "/api/v1/discounts", {"couponId": coupon["id"], "subscriptionId": subscription["id"]}
    )

    assert applied.status_code == 200, applied.text
    discount = applied.json()
    assert (discount["periodsLeft"], discount["customerId"]) == (1, subscription["userId"])
    again = await api.post(
        "/api/v1/discounts", {"couponId": coupon["id"], "subscriptionId": subscription["id"]}
    )
    assert refusal(again) == (409, "failed_precondition", "subscriptionId")
    await advance(api, subscription, 31 * DAY)
    [invoice] = (await api.get("/api/v1/invoices", subscriptionId=subscription["id"])).json()[
        "data"
    ]
    assert [(line["description"], line["amount"]) for line in invoice["lines"]][-1] == (
        "Discount: Half (50% off)",
        "-0.500000",
    )
    assert invoice["amount"] == "0.500000"
    listed = (await api.get("/api/v1/discounts", subscriptionId=subscription["id"])).json()
    assert [(d["id"], d["periodsLeft"], "endTime" in d) for d in listed["data"]] == [
        (discount["id"], 0, True)
    ]
    assert (await api.get(f"/api/v1/coupons/{coupon['id']}")).json()["timesRedeemed"] == 1


async def test_plan_versions_and_a_migration_through_rest(api: Api) -> None:
    starter, _, _ = await two_plans(api)
    subscription = await subscribe(api, starter)

    made = await api.post(f"/api/v1/plans/{starter['id']}/versions", {"amount": "0.000012"})

    assert made.status_code == 200, made.text
    v2 = made.json()
    assert (v2["version"], v2["versionOf"], v2["name"], v2["amount"]) == (
        2,
        starter["id"],
        "Starter",
        "0.000012",
    )
    again = await api.post(f"/api/v1/plans/{starter['id']}/versions", {"amount": "0.000013"})
    assert refusal(again) == (409, "failed_precondition", "planId")
    dry = await api.post(f"/api/v1/plans/{starter['id']}/migrations", {"dryRun": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["toPlanId"] == v2["id"]
    assert [(m["subscriptionId"], m["outcome"]) for m in dry.json()["data"]] == [
        (subscription["id"], "SCHEDULED")
    ]
    done = await api.post(f"/api/v1/plans/{starter['id']}/migrations", {})
    assert done.status_code == 200, done.text
    moved = (await api.get(f"/api/v1/subscriptions/{subscription['id']}")).json()
    assert moved["scheduledPlanId"] == v2["id"]

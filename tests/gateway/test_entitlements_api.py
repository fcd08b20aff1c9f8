"""Entitlements end to end over REST: a plan's features and limits reach metering's replica of
its subscription (at checkout, and again when the plan changes), the check answers from them,
and a HARD limit refuses what would pass it."""

from typing import Any

from tests.gateway.conftest import Api
from tests.gateway.test_plan_entitlements_api import entitled_plan, patch
from tests.gateway.test_rest_api import event, relay, subscribe


async def check(api: Api, subscription: dict[str, str], **query: str) -> dict[str, Any]:
    answer = await api.get("/api/v1/entitlements/check", subscriptionId=subscription["id"], **query)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_the_check_and_ingestion_follow_the_plan(api: Api) -> None:
    plan = await entitled_plan(api)  # tokens: HARD 1,000,000.5; requests: SOFT 1,000
    subscription = await subscribe(api, {"id": str(plan["id"])}, "usr_entitled")
    tokens = {"eventKey": "tokens"}
    recorded = await api.post("/api/v1/usage-events", event(subscription, 999_999, **tokens))
    assert recorded.status_code == 200, recorded.text

    fits = await check(api, subscription, eventKey="tokens", quantity="1.5")
    past = await check(api, subscription, eventKey="tokens", quantity="1.6")
    sso = await check(api, subscription, feature="sso")
    refused = await api.post("/api/v1/usage-events", event(subscription, 1.6, **tokens))
    taken = await api.post("/api/v1/usage-events", event(subscription, 1.5, **tokens))

    assert fits == {
        "allowed": True,
        "reason": "WITHIN_LIMIT",
        "limit": "1000000.5",
        "enforcement": "HARD",
        "used": "999999",
        "remaining": "1.5",
        "periodStart": subscription["currentPeriodStart"],
        "periodEnd": subscription["currentPeriodEnd"],
        "creditsLeft": "",
    }
    assert (past["allowed"], past["reason"]) == (False, "HARD_LIMIT_EXCEEDED")
    assert (sso["allowed"], sso["reason"], sso["limit"], sso["remaining"]) == (
        True,
        "FEATURE_INCLUDED",
        "",
        "",
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == {
        "type": "conflict_error",
        "code": "failed_precondition",
        "message": "the plan's hard limit on tokens is 1000000.5 per billing period: this event "
        "would take its usage from 999999 to 1000000.6",
        "param": "quantity",
    }
    assert taken.status_code == 200, taken.text
    usage = (await api.get(f"/api/v1/subscriptions/{subscription['id']}/usage")).json()
    assert {s["eventKey"]: s["value"] for s in usage["summaries"]}["tokens"] == "1000000.5"

    # The merchant lowers the limit and drops a feature: once the outbox has pushed the change,
    # metering answers and enforces the new plan.
    changed = await patch(
        api,
        plan,
        {
            "features": ["gpt-4o"],
            "limits": [{"eventKey": "tokens", "quantity": 10, "enforcement": "SOFT"}],
        },
    )
    assert changed.status_code == 200, changed.text
    await relay(api.platform)
    soft = await check(api, subscription, eventKey="tokens")
    gone = await check(api, subscription, feature="sso")
    again = await api.post("/api/v1/usage-events", event(subscription, 5, **tokens))

    assert (soft["allowed"], soft["reason"], soft["limit"], soft["remaining"]) == (
        True,
        "SOFT_LIMIT_EXCEEDED",
        "10",
        "0",
    )
    assert (gone["allowed"], gone["reason"]) == (False, "FEATURE_NOT_INCLUDED")
    assert again.status_code == 200, again.text


async def test_a_bad_check_names_the_parameter(api: Api) -> None:
    plan = await entitled_plan(api)
    subscription = await subscribe(api, {"id": str(plan["id"])}, "usr_bad_check")

    both = await api.get(
        "/api/v1/entitlements/check", subscriptionId=subscription["id"], feature="sso", eventKey="x"
    )
    negative = await api.get(
        "/api/v1/entitlements/check", subscriptionId=subscription["id"], eventKey="x", quantity="-1"
    )
    unknown = await api.get("/api/v1/entitlements/check", subscriptionId="sub_nope", feature="sso")

    assert (both.status_code, both.json()["error"]["param"]) == (400, "eventKey")
    assert (negative.status_code, negative.json()["error"]["param"]) == (400, "quantity")
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (404, "subscriptionId")

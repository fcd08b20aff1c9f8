"""Prepaid-only plans through REST, on the whole platform: the credits are topped up, usage
burns them down and stops at zero (409 naming the quantity), the period's invoice is paid by
them, the next period starts from what they left, and a subscriber holds one prepaid-only
subscription per merchant."""

from typing import Any

from tests.gateway.conftest import Api
from tests.gateway.test_credits_api import relay_settlement
from tests.gateway.test_rest_api import event, relay, subscribe

MONTH_AND_GRACE = 31 * 86400 + 7200


async def prepaid_plan(api: Api, unit_price: str = "0.001") -> dict[str, Any]:
    service = (await api.post("/api/v1/services", {"name": "Agent API"})).json()
    created = await api.post(
        f"/api/v1/services/{service['id']}/plans",
        {
            "name": "Prepaid tokens",
            "pricingType": "USAGE_BASED",
            "billingInterval": "MONTH",
            "amount": unit_price,
            "prepaidOnly": True,
        },
    )
    assert created.status_code == 200, created.text
    plan: dict[str, Any] = created.json()
    return plan


async def top_up(api: Api, user_id: str, amount: str) -> None:
    """Credits granted; settlement tells invoicing, which tells metering."""
    granted = await api.post(f"/api/v1/customers/{user_id}/credit-grants", {"amount": amount})
    assert granted.status_code == 201, granted.text
    await relay_settlement(api)
    await relay(api.platform)


async def use(api: Api, subscription: dict[str, str], quantity: str) -> tuple[int, Any]:
    recorded = await api.post("/api/v1/usage-events", event(subscription, quantity))
    return recorded.status_code, recorded.json()


async def balance(api: Api, subscription: dict[str, str]) -> str:
    found = await api.get(f"/api/v1/subscriptions/{subscription['id']}/balance")
    assert found.status_code == 200, found.text
    value: str = found.json()["balance"]
    return value


async def test_a_prepaid_plan_is_topped_up_burns_down_and_stops_at_zero(api: Api) -> None:
    plan = await prepaid_plan(api)
    assert plan["prepaidOnly"] is True
    subscription = await subscribe(api, plan, "usr_prepaid_burn")
    user = subscription["userId"]

    # No credits yet: nothing can be used.
    status, body = await use(api, subscription, "1")
    assert (status, body["error"]["param"]) == (409, "quantity")

    await top_up(api, user, "1")
    assert (await use(api, subscription, "600"))[0] == 200
    assert (await use(api, subscription, "400"))[0] == 200
    status, body = await use(api, subscription, "1")
    assert (status, body["error"]["param"]) == (409, "quantity")
    assert "from 1.000000 to 1.001000 USDC" in body["error"]["message"]
    assert await balance(api, subscription) == "0.000000"
    check = await api.get(
        "/api/v1/entitlements/check",
        subscriptionId=subscription["id"],
        eventKey="token_generated",
        quantity="1",
    )
    assert {k: check.json()[k] for k in ("allowed", "reason", "creditsLeft")} == {
        "allowed": False,
        "reason": "INSUFFICIENT_CREDITS",
        "creditsLeft": "0.000000",
    }

    # The period closes: its invoice is paid by the credits, to the base unit.
    advanced = await api.post(
        f"/api/v1/subscriptions/{subscription['id']}/test-clock/advance",
        {"seconds": MONTH_AND_GRACE},
    )
    assert advanced.status_code == 200, advanced.text
    await relay(api.platform)
    [invoice] = (await api.get("/api/v1/invoices", subscriptionId=subscription["id"])).json()[
        "data"
    ]
    assert (invoice["creditsApplied"], invoice["amount"], invoice["status"]) == (
        "1.000000",
        "0.000000",
        "PAID",
    )

    # The next period starts from what the credits left: nothing, until the next top-up.
    status, body = await use(api, subscription, "1")
    assert (status, body["error"]["param"]) == (409, "quantity")
    await top_up(api, user, "0.5")
    assert (await use(api, subscription, "500"))[0] == 200
    assert (await use(api, subscription, "1"))[0] == 409
    assert await balance(api, subscription) == "0.000000"


async def test_a_subscriber_holds_one_prepaid_only_subscription_per_merchant(api: Api) -> None:
    first = await prepaid_plan(api)
    second = await prepaid_plan(api)
    await subscribe(api, first, "usr_prepaid_once")

    session = (
        await api.post(
            "/api/v1/checkout-sessions",
            {
                "planId": second["id"],
                "userId": "usr_prepaid_once",
                "successUrl": "https://m.example/ok",
                "cancelUrl": "https://m.example/no",
            },
        )
    ).json()
    refused = await api.post(f"/api/v1/checkout-sessions/{session['id']}/complete", {})

    assert refused.status_code == 409, refused.text
    assert "already has the prepaid-only subscription" in refused.json()["error"]["message"]
    still_open = await api.get(f"/api/v1/checkout-sessions/{session['id']}")
    assert still_open.json()["status"] == "OPEN"
    # Another subscriber may.
    assert (await subscribe(api, second, "usr_prepaid_other"))["status"] == "ACTIVE"


async def test_only_a_usage_based_plan_is_prepaid_only(api: Api) -> None:
    service = (await api.post("/api/v1/services", {"name": "Agent API"})).json()
    refused = await api.post(
        f"/api/v1/services/{service['id']}/plans",
        {
            "name": "Monthly",
            "pricingType": "FIXED_RECURRING",
            "billingInterval": "MONTH",
            "amount": "10",
            "prepaidOnly": True,
        },
    )

    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "prepaidOnly")

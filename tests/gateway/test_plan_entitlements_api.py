"""A plan's entitlements over REST: `features` and `limits` on POST, on every plan answer and on
PATCH (the fields present form the change), refusals naming the field, nothing changed by them."""

import asyncpg
import httpx
import pytest

from tests.gateway.conftest import Api
from tests.gateway.test_rest_api import subscribe

MONTH_SECONDS = str(28 * 86_400)


async def entitled_plan(api: Api) -> dict[str, object]:
    service = (await api.post("/api/v1/services", {"name": "Inference"})).json()
    created = await api.post(
        f"/api/v1/services/{service['id']}/plans",
        {
            "name": "Starter",
            "pricingType": "USAGE_BASED",
            "billingInterval": "MONTH",
            "amount": "0.000010",
            "features": ["sso", "gpt-4o"],
            "limits": [
                {"eventKey": "tokens", "quantity": 1000000.5, "enforcement": "HARD"},
                {"eventKey": "requests", "quantity": "1e3", "enforcement": "SOFT"},
            ],
        },
    )
    assert created.status_code == 200, created.text
    plan: dict[str, object] = created.json()
    assert plan == {
        "id": plan["id"],
        "serviceId": service["id"],
        "name": "Starter",
        "pricingType": "USAGE_BASED",
        "billingInterval": "MONTH",
        "intervalCount": 1,
        "amount": "0.00001",
        "currency": "USDC",
        "charges": [],
        "createTime": plan["createTime"],
        "usageCeiling": "0.000000",
        "autoPayCap": "0.000000",
        "autoPayPeriodSeconds": MONTH_SECONDS,
        "features": ["sso", "gpt-4o"],
        "limits": [
            {"eventKey": "tokens", "quantity": "1000000.5", "enforcement": "HARD"},
            {"eventKey": "requests", "quantity": "1000", "enforcement": "SOFT"},
        ],
        "prepaidOnly": False,
        "trialDays": 0,
        "trialUsageBilled": False,
        "trialEndAction": "CONVERT",
        "version": 1,
        "versionOf": "",
        "supersededBy": "",
    }
    return plan


async def patch(api: Api, plan: dict[str, object], body: object) -> httpx.Response:
    return await api.client.patch(f"/api/v1/plans/{plan['id']}", json=body)


async def test_a_plans_entitlements_are_created_read_and_listed(api: Api) -> None:
    plan = await entitled_plan(api)
    assert (await api.get(f"/api/v1/plans/{plan['id']}")).json() == plan
    listed = (await api.get(f"/api/v1/services/{plan['serviceId']}/plans")).json()
    assert listed["data"] == [plan]
    # Without them, both are empty lists.
    bare = await api.post(
        f"/api/v1/services/{plan['serviceId']}/plans",
        {"name": "Bare", "pricingType": "USAGE_BASED", "billingInterval": "DAY", "amount": 1},
    )
    assert (bare.json()["features"], bare.json()["limits"]) == ([], [])


async def test_patch_changes_the_fields_present(api: Api, db: asyncpg.Connection) -> None:
    plan = await entitled_plan(api)
    subscription = await subscribe(api, {"id": str(plan["id"])}, "usr_patched")
    version = "SELECT version FROM invoicing.subscriptions WHERE id = $1"
    assert await db.fetchval(version, subscription["id"]) == 1

    changed = await patch(api, plan, {"features": ["sso", "batch"]})
    assert changed.status_code == 200, changed.text
    expected = {**plan, "features": ["sso", "batch"]}
    assert changed.json() == expected
    # A change of entitlements raises the version of the plan's subscriptions (metering's
    # replica takes the next push as newer).
    assert await db.fetchval(version, subscription["id"]) == 2

    changed = await patch(
        api,
        plan,
        {"limits": [{"eventKey": "images", "quantity": 0, "enforcement": "HARD"}], "features": []},
    )
    expected = {
        **expected,
        "features": [],
        "limits": [{"eventKey": "images", "quantity": "0", "enforcement": "HARD"}],
    }
    assert changed.json() == expected
    assert await db.fetchval(version, subscription["id"]) == 3

    # The ceiling alone leaves the entitlements, and the subscription's version, as they are.
    changed = await patch(api, plan, {"usageCeiling": "2.5", "limits": None})
    expected = {**expected, "usageCeiling": "2.500000", "autoPayCap": "2.500000"}
    assert changed.json() == expected
    assert await db.fetchval(version, subscription["id"]) == 3

    changed = await patch(api, plan, {"limits": []})
    expected = {**expected, "limits": []}
    assert changed.json() == expected
    assert (await api.get(f"/api/v1/plans/{plan['id']}")).json() == expected


def limits(**fields: object) -> dict[str, object]:
    return {"limits": [{"eventKey": "tokens", "quantity": 5, "enforcement": "SOFT", **fields}]}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "usageCeiling"),
        ({"features": None, "limits": None}, "usageCeiling"),
        (limits(quantity=-1), "quantity"),
        (limits(quantity="0.0000000000001"), "quantity"),
        (limits(quantity=10**15), "quantity"),
        (limits(quantity="many"), "limits.quantity"),
        (limits(quantity=True), "limits.quantity"),
        (limits(enforcement="STRICT"), "limits.enforcement"),
        (limits(enforcement=None), "limits.enforcement"),
        (limits(eventKey="to kens"), "eventKey"),
        (
            {
                "limits": [
                    {"eventKey": "tokens", "quantity": 1, "enforcement": "SOFT"},
                    {"eventKey": "tokens", "quantity": 2, "enforcement": "HARD"},
                ]
            },
            "eventKey",
        ),
        ({"limits": [{"eventKey": "tokens", "quantity": 1}]}, "limits.enforcement"),
        ({"features": ["sso", "sso"]}, "features[1]"),
        ({"features": ["-sso"]}, "features[0]"),
        ({"features": [f"f{i}" for i in range(51)]}, "features"),
        ({"features": [1]}, "features"),
    ],
)
async def test_a_bad_change_is_refused_with_the_field_and_changes_nothing(
    api: Api, body: object, param: str
) -> None:
    plan = await entitled_plan(api)
    refused = await patch(api, plan, body)
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, param), refused.text
    assert (await api.get(f"/api/v1/plans/{plan['id']}")).json() == plan


async def test_a_plan_with_a_bad_limit_is_not_created(api: Api) -> None:
    service = (await api.post("/api/v1/services", {"name": "Inference"})).json()
    path = f"/api/v1/services/{service['id']}/plans"
    body = {"name": "Bad", "pricingType": "USAGE_BASED", "billingInterval": "MONTH", "amount": 1}
    for extra, param in (
        (limits(quantity="1e15"), "quantity"),
        (limits(enforcement="NONE"), "limits.enforcement"),
        ({"features": ["ok", ""]}, "features[1]"),
    ):
        refused = await api.post(path, {**body, **extra})
        assert (refused.status_code, refused.json()["error"]["param"]) == (400, param)
    assert (await api.get(path)).json()["data"] == []

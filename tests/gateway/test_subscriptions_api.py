"""The merchant's subscriptions listed through REST, by status, user and plan, page by page."""

from tests.gateway.conftest import Api
from tests.gateway.test_rest_api import subscribe, usage_plan


async def test_subscriptions_are_listed_by_status_user_and_plan_in_pages(api: Api) -> None:
    service, first_plan = await usage_plan(api)
    second_plan = (
        await api.post(
            f"/api/v1/services/{service['id']}/plans",
            {"name": "Other", "pricingType": "USAGE_BASED", "billingInterval": "DAY", "amount": 1},
        )
    ).json()
    first = await subscribe(api, first_plan, "usr_ada")
    second = await subscribe(api, first_plan, "usr_bob")
    third = await subscribe(api, second_plan, "usr_ada")
    canceled = await api.post(f"/api/v1/subscriptions/{second['id']}/cancel", {})
    assert canceled.json()["status"] == "CANCELED"

    async def listed(**query: str) -> list[str]:
        found = await api.get("/api/v1/subscriptions", **query)
        assert found.status_code == 200, found.text
        return [s["id"] for s in found.json()["data"]]

    ids = {first["id"]: "first", second["id"]: "second", third["id"]: "third"}

    async def names(**query: str) -> list[str]:
        return [ids[i] for i in await listed(**query)]

    assert await names() == ["first", "second", "third"]
    assert await names(status="ACTIVE") == ["first", "third"]
    assert await names(status="CANCELED") == ["second"]
    assert await names(status="PAST_DUE") == []
    assert await names(userId="usr_ada") == ["first", "third"]
    assert await names(planId=first_plan["id"]) == ["first", "second"]
    assert await names(planId=first_plan["id"], status="ACTIVE") == ["first"]
    assert await names(serviceId=service["id"], userId="usr_bob") == ["second"]

    page = (await api.get("/api/v1/subscriptions", limit="2")).json()
    assert ([ids[s["id"]] for s in page["data"]], page["hasMore"]) == (["first", "second"], True)
    rest = (
        await api.get("/api/v1/subscriptions", limit="2", startingAfter=page["nextStartingAfter"])
    ).json()
    assert ([ids[s["id"]] for s in rest["data"]], rest["hasMore"]) == (["third"], False)

    bad = await api.get("/api/v1/subscriptions", status="SUSPENDED")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "status")

"""Customers through REST: the subscribers checkout recorded, read one by one and by email, and
what an email has access to (Revnu's GET /api/v1/access?email=)."""

from tests.gateway.conftest import Api
from tests.gateway.test_rest_api import relay, usage_plan


async def _subscribe_new(api: Api, plan: dict[str, str], email: str, name: str) -> dict[str, str]:
    session = (
        await api.post(
            "/api/v1/checkout-sessions",
            {
                "planId": plan["id"],
                "email": email,
                "name": name,
                "successUrl": "https://m.example/ok",
                "cancelUrl": "https://m.example/no",
            },
        )
    ).json()
    done = (await api.post(f"/api/v1/checkout-sessions/{session['id']}/complete", {})).json()
    await relay(api.platform)
    subscription: dict[str, str] = (
        await api.get(f"/api/v1/subscriptions/{done['subscriptionId']}")
    ).json()
    return subscription


async def test_customers_are_read_by_id_and_email_and_access_follows_their_subscriptions(
    api: Api,
) -> None:
    _, plan = await usage_plan(api)
    ada = await _subscribe_new(api, plan, "Ada@Example.com", "Ada")
    bob = await _subscribe_new(api, plan, "bob@example.com", "Bob")
    # The same email signs up again: a second customer.
    ada_again = await _subscribe_new(api, plan, "ada@example.com", "Ada L.")

    one = await api.get(f"/api/v1/customers/{ada['userId']}")
    assert one.status_code == 200, one.text
    customer = one.json()
    assert {k: customer[k] for k in ("id", "email", "name", "walletAddress")} == {
        "id": ada["userId"],
        "email": "Ada@Example.com",
        "name": "Ada",
        "walletAddress": "",
    }
    assert customer["createTime"] == ada["createTime"]
    everyone = (await api.get("/api/v1/customers")).json()["data"]
    assert [c["id"] for c in everyone] == [ada["userId"], bob["userId"], ada_again["userId"]]
    by_email = (await api.get("/api/v1/customers", email="ADA@example.com")).json()["data"]
    assert [c["name"] for c in by_email] == ["Ada", "Ada L."]
    first_page = (await api.get("/api/v1/customers", limit="2")).json()
    rest = (
        await api.get("/api/v1/customers", startingAfter=first_page["nextStartingAfter"])
    ).json()
    assert [len(first_page["data"]), first_page["hasMore"], len(rest["data"])] == [2, True, 1]

    access = await api.get("/api/v1/access", email="ada@example.com")
    assert access.status_code == 200, access.text
    answer = access.json()
    assert answer["hasAccess"] is True
    assert [c["id"] for c in answer["customers"]] == [ada["userId"], ada_again["userId"]]
    assert [s["id"] for s in answer["subscriptions"]] == [ada["id"], ada_again["id"]]

    for subscription in (ada, ada_again):
        await api.post(f"/api/v1/subscriptions/{subscription['id']}/cancel", {})
    ended = (await api.get("/api/v1/access", email="ada@example.com")).json()
    assert (ended["hasAccess"], len(ended["customers"]), ended["subscriptions"]) == (False, 2, [])
    nobody = (await api.get("/api/v1/access", email="eve@example.com")).json()
    assert (nobody["hasAccess"], nobody["customers"], nobody["subscriptions"]) == (False, [], [])

    missing = await api.get("/api/v1/customers/usr_missing")
    no_email = await api.get("/api/v1/access")
    answers = [(r.status_code, r.json()["error"]["param"]) for r in (missing, no_email)]
    assert answers == [(404, "id"), (400, "email")]

"""Usage alerts through REST: created on a plan or a subscription (exact JSON), read, listed by
plan and subscription in pages, deleted; an Idempotency-Key creates once, also when the gateway
forgot it; refusals name the field and create nothing; and a crossing end to end: usage past a
plan's threshold, invoicing's alert pass, the crossing listed exactly, recorded once however
often the pass runs; and a SPEND alert that INVOICEs, its crossing naming the interim invoice.

The pass looks at every merchant's subscriptions, so a test runs it once before its own usage
(what earlier tests left is recorded then) and leaves no alert that a later pass would cross."""

from typing import Any

import asyncpg

from invoicing_svc.service_layer.alerts import check_alerts
from tests.gateway.conftest import Api
from tests.gateway.test_credits_api import rfc3339
from tests.gateway.test_rest_api import event, subscribe, usage_plan

ALERTS = "/api/v1/usage-alerts"


async def create(api: Api, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    created = await api.post(ALERTS, body, **headers)
    assert created.status_code == 200, created.text
    alert: dict[str, Any] = created.json()
    return alert


async def listed(api: Api, **params: str) -> list[str]:
    found = await api.get(ALERTS, **params)
    assert found.status_code == 200, found.text
    return [a["id"] for a in found.json()["data"]]


async def crossings(api: Api, subscription_id: str, **params: str) -> Any:
    found = await api.get(f"/api/v1/subscriptions/{subscription_id}/alert-crossings", **params)
    assert found.status_code == 200, found.text
    return found.json()


async def test_alerts_are_created_read_listed_and_deleted(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan, "usr_alerts")
    now = rfc3339(api.platform.clock.now())

    on_plan = await create(
        api,
        {
            "planId": plan["id"],
            "kind": "USAGE_QUANTITY",
            "eventKey": "token_generated",
            "threshold": "1000000.000000000001",
        },
    )
    assert on_plan["id"].startswith("alrt_") and len(on_plan["id"]) == 31
    assert on_plan == {
        "id": on_plan["id"],
        "planId": plan["id"],
        "subscriptionId": "",
        "kind": "USAGE_QUANTITY",
        "eventKey": "token_generated",
        "threshold": "1000000.000000000001",
        "action": "NOTIFY",
        "createTime": now,
    }
    spend = await create(
        api,
        {
            "subscriptionId": subscription["id"],
            "kind": "SPEND",
            "threshold": "2.50",
            "action": "INVOICE",
        },
    )
    assert {k: v for k, v in spend.items() if k != "id"} == {
        "planId": "",
        "subscriptionId": subscription["id"],
        "kind": "SPEND",
        "eventKey": "",
        "threshold": "2.5",
        "action": "INVOICE",
        "createTime": now,
    }
    balance = await create(
        api,
        {
            "subscriptionId": subscription["id"],
            "kind": "BALANCE",
            "threshold": 0,
            "action": "NOTIFY",
        },
    )
    assert (balance["kind"], balance["threshold"], balance["action"]) == ("BALANCE", "0", "NOTIFY")

    for alert in (on_plan, spend, balance):
        fetched = await api.get(f"{ALERTS}/{alert['id']}")
        assert (fetched.status_code, fetched.json()) == (200, alert)
    everything = (await api.get(ALERTS)).json()
    assert everything == {
        "object": "list",
        "data": [on_plan, spend, balance],
        "hasMore": False,
        "nextStartingAfter": None,
    }
    assert await listed(api, planId=plan["id"]) == [on_plan["id"]]
    assert await listed(api, subscriptionId=subscription["id"]) == [spend["id"], balance["id"]]
    first = (await api.get(ALERTS, limit="2")).json()
    assert ([a["id"] for a in first["data"]], first["hasMore"]) == (
        [on_plan["id"], spend["id"]],
        True,
    )
    rest = (await api.get(ALERTS, limit="2", startingAfter=first["nextStartingAfter"])).json()
    assert ([a["id"] for a in rest["data"]], rest["hasMore"], rest["nextStartingAfter"]) == (
        [balance["id"]],
        False,
        None,
    )

    deleted = await api.client.delete(f"{ALERTS}/{spend['id']}")
    assert (deleted.status_code, deleted.json()) == (200, {"id": spend["id"], "deleted": True})
    gone = [
        await api.get(f"{ALERTS}/{spend['id']}"),
        await api.client.delete(f"{ALERTS}/{spend['id']}"),
    ]
    assert [(r.status_code, r.json()["error"]["type"]) for r in gone] == [
        (404, "invalid_request_error"),
        (404, "invalid_request_error"),
    ]
    assert await listed(api) == [on_plan["id"], balance["id"]]
    assert await listed(api, subscriptionId=subscription["id"]) == [balance["id"]]
    # The subscription has no credits: its BALANCE alert is crossed (credits.exhausted) at the
    # next alert pass, which another test's counts must not meet.
    assert (await api.client.delete(f"{ALERTS}/{balance['id']}")).status_code == 200


async def test_an_idempotency_key_creates_once_even_when_the_gateway_forgot_it(
    api: Api, db: asyncpg.Connection
) -> None:
    _, plan = await usage_plan(api)
    body = {"planId": plan["id"], "kind": "SPEND", "threshold": "10"}
    first = await api.post(ALERTS, body, **{"Idempotency-Key": "alert-1"})
    again = await api.post(ALERTS, body, **{"Idempotency-Key": "alert-1"})
    assert first.status_code == 200, first.text
    assert (again.status_code, again.json(), again.headers["Idempotent-Replayed"]) == (
        200,
        first.json(),
        "true",
    )
    # The gateway forgets a key whose call failed on its side; invoicing knows the request.
    await db.execute(
        "DELETE FROM gateway.idempotent_responses WHERE merchant_id = $1", api.merchant_id
    )
    retried = await api.post(ALERTS, body, **{"Idempotency-Key": "alert-1"})
    assert (retried.status_code, retried.json()) == (200, first.json())
    assert "Idempotent-Replayed" not in retried.headers
    other = await api.post(ALERTS, body, **{"Idempotency-Key": "alert-2"})
    changed = await api.post(ALERTS, {**body, "threshold": "11"}, **{"Idempotency-Key": "alert-2"})
    assert (changed.status_code, changed.json()["error"]["code"]) == (409, "idempotency_key_reused")
    assert await listed(api) == [first.json()["id"], other.json()["id"]]


async def test_refusals_name_the_field_and_create_nothing(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan, "usr_alert_refusals")
    usage = {"planId": plan["id"], "kind": "USAGE_QUANTITY", "eventKey": "token_generated"}
    spend = {"planId": plan["id"], "kind": "SPEND"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        # The gateway's own: the body's shape.
        ({**usage}, 400, "threshold"),
        ({**usage, "threshold": "ten"}, 400, "threshold"),
        ({**usage, "threshold": True}, 400, "threshold"),
        ({**usage, "kind": "TOKENS", "threshold": 1}, 400, "kind"),
        ({**spend, "threshold": 1, "action": "LATER"}, 400, "action"),
        ({**usage, "eventKey": "k" * 129, "threshold": 1}, 400, "eventKey"),
        # Invoicing's, named in the request's spelling.
        ({**usage, "subscriptionId": subscription["id"], "threshold": 1}, 400, "planId"),
        ({"kind": "SPEND", "threshold": 1}, 400, "planId"),
        ({**usage, "threshold": 0}, 400, "threshold"),
        ({**usage, "threshold": "-1"}, 400, "threshold"),
        ({**usage, "threshold": "0.0000000000001"}, 400, "threshold"),
        ({**spend, "threshold": "0.0000001"}, 400, "threshold"),
        ({**spend, "threshold": "1e15"}, 400, "threshold"),
        ({**usage, "eventKey": "", "threshold": 1}, 400, "eventKey"),
        ({**spend, "eventKey": "token_generated", "threshold": 1}, 400, "eventKey"),
        # The plan charges the key with no included quantity: no share of it to measure.
        ({**usage, "kind": "INCLUDED_SHARE", "threshold": 80}, 400, "eventKey"),
        ({**usage, "threshold": 1, "action": "INVOICE"}, 400, "action"),
        ({**usage, "planId": "plan_missing", "threshold": 1}, 404, "planId"),
        ({"subscriptionId": "sub_missing", "kind": "SPEND", "threshold": 1}, 404, "subscriptionId"),
    ]
    answers = [await api.post(ALERTS, body) for body, _, _ in cases]
    assert [(a.status_code, a.json()["error"]["param"]) for a in answers] == [
        (status, param) for _, status, param in cases
    ], [a.text for a in answers]
    assert await listed(api) == []
    missing = [
        await api.get(f"{ALERTS}/alrt_missing"),
        await api.client.delete(f"{ALERTS}/alrt_missing"),
        await api.get("/api/v1/subscriptions/sub_missing/alert-crossings"),
    ]
    assert [(r.status_code, r.json()["error"]["param"]) for r in missing] == [
        (404, "id"),
        (404, "id"),
        (404, "subscriptionId"),
    ]
    pages = [await api.get(ALERTS, limit="0"), await api.get(ALERTS, limit="101")]
    assert [(r.status_code, r.json()["error"]["param"]) for r in pages] == [
        (400, "limit"),
        (400, "limit"),
    ]


async def test_usage_past_a_plans_threshold_is_one_crossing_however_often_checked(
    api: Api,
) -> None:
    _, plan = await usage_plan(api)
    crossed = await create(
        api,
        {
            "planId": plan["id"],
            "kind": "USAGE_QUANTITY",
            "eventKey": "token_generated",
            "threshold": 100,
        },
    )
    # Not reached by the usage below, and one deleted before the pass: neither crosses.
    higher = await create(
        api,
        {
            "planId": plan["id"],
            "kind": "USAGE_QUANTITY",
            "eventKey": "token_generated",
            "threshold": "1000",
        },
    )
    subscription = await subscribe(api, plan, "usr_alert_crossing")
    dropped = await create(
        api,
        {
            "subscriptionId": subscription["id"],
            "kind": "USAGE_QUANTITY",
            "eventKey": "token_generated",
            "threshold": 10,
        },
    )
    assert (await api.client.delete(f"{ALERTS}/{dropped['id']}")).status_code == 200
    await check_alerts(api.platform.invoicing)  # what other tests left
    assert (await crossings(api, subscription["id"]))["data"] == []
    for burst, quantity in enumerate(("60", "50.5")):
        recorded = await api.post(
            "/api/v1/usage-events", event(subscription, quantity, idempotencyKey=f"a{burst}")
        )
        assert (recorded.status_code, recorded.json()["outcome"]) == (200, "ACCEPTED")

    assert await check_alerts(api.platform.invoicing) == 1
    found = await crossings(api, subscription["id"])
    assert found == {
        "object": "list",
        "data": [
            {
                "alertId": crossed["id"],
                "subscriptionId": subscription["id"],
                "userId": "usr_alert_crossing",
                "eventType": "usage.threshold_crossed",
                "kind": "USAGE_QUANTITY",
                "eventKey": "token_generated",
                "threshold": "100",
                "value": "110.5",
                "periodStart": subscription["currentPeriodStart"],
                "periodEnd": subscription["currentPeriodEnd"],
                "invoiceId": "",
                "crossTime": rfc3339(api.platform.clock.now()),
            }
        ],
        "hasMore": False,
        "nextStartingAfter": None,
    }
    assert await check_alerts(api.platform.invoicing) == 0
    assert await crossings(api, subscription["id"]) == found

    # Past the higher threshold: its crossing follows the first, in pages (the clock stands
    # still, so both crossed at one time, and the older alert's comes first).
    recorded = await api.post("/api/v1/usage-events", event(subscription, 900, idempotencyKey="a2"))
    assert recorded.json()["outcome"] == "ACCEPTED"
    assert await check_alerts(api.platform.invoicing) == 1
    first = await crossings(api, subscription["id"], limit="1")
    assert (first["data"], first["hasMore"]) == (found["data"], True)
    rest = await crossings(
        api, subscription["id"], limit="1", startingAfter=first["nextStartingAfter"]
    )
    [second] = rest["data"]
    assert (second["alertId"], second["threshold"], second["value"], rest["hasMore"]) == (
        higher["id"],
        "1000",
        "1010.5",
        False,
    )
    assert await check_alerts(api.platform.invoicing) == 0
    # A deleted alert's crossings stay.
    assert (await api.client.delete(f"{ALERTS}/{crossed['id']}")).status_code == 200
    after = await crossings(api, subscription["id"])
    assert after["data"] == [*found["data"], second]


async def test_a_spend_alert_that_invoices_bills_the_usage_so_far_in_an_interim_invoice(
    api: Api,
) -> None:
    _, plan = await usage_plan(api)  # 0.00001 USDC a token
    subscription = await subscribe(api, plan, "usr_alert_interim")
    alert = await create(
        api,
        {
            "subscriptionId": subscription["id"],
            "kind": "SPEND",
            "threshold": "0.5",
            "action": "INVOICE",
        },
    )
    await check_alerts(api.platform.invoicing)  # what other tests left
    recorded = await api.post(
        "/api/v1/usage-events", event(subscription, 60000, idempotencyKey="spent")
    )
    assert recorded.json()["outcome"] == "ACCEPTED"

    assert await check_alerts(api.platform.invoicing) == 1
    [crossing] = (await crossings(api, subscription["id"]))["data"]
    now = rfc3339(api.platform.clock.now())
    assert crossing == {
        "alertId": alert["id"],
        "subscriptionId": subscription["id"],
        "userId": "usr_alert_interim",
        "eventType": "usage.threshold_crossed",
        "kind": "SPEND",
        "eventKey": "",
        "threshold": "0.5",
        "value": "0.6",
        "periodStart": subscription["currentPeriodStart"],
        "periodEnd": subscription["currentPeriodEnd"],
        "invoiceId": crossing["invoiceId"],
        "crossTime": now,
    }
    invoice = (await api.get(f"/api/v1/invoices/{crossing['invoiceId']}")).json()
    assert {k: invoice[k] for k in ("interim", "topUp", "status", "amount", "lines")} == {
        "interim": True,
        "topUp": False,
        "status": "OPEN",
        "amount": "0.600000",
        "lines": [
            {
                "description": "Usage: 60000 x 0.00001",
                "eventKey": "",
                "quantity": "60000",
                "amount": "0.600000",
            }
        ],
    }
    assert invoice["paymentRequest"]["amountBaseUnits"] == "600000"
    listed = (await api.get("/api/v1/invoices", subscriptionId=subscription["id"])).json()
    assert [(i["id"], i["interim"]) for i in listed["data"]] == [(invoice["id"], True)]
    assert await check_alerts(api.platform.invoicing) == 0

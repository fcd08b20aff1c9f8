"""Prepaid credits through REST: a customer's grants, the balance they hold and its history in the
ledger; Idempotency-Key; the refusals settlement and the gateway name; another merchant's
customer of the same id; the credits paying the customer's invoices (`creditsApplied`), and a
top-up invoice selling them (`topUp`)."""

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
from google.protobuf.timestamp_pb2 import Timestamp

from settlement_svc.service_layer.relay import outbox_relay as settlement_outbox
from tests.gateway.conftest import Api, new_merchant
from tests.gateway.test_rest_api import event, relay, subscribe, usage_plan


def rfc3339(moment: datetime) -> str:
    """A moment as the API renders a protobuf Timestamp."""
    timestamp = Timestamp()
    timestamp.FromDatetime(moment)
    return timestamp.ToJsonString()


async def customer(api: Api, user_id: str) -> str:
    """A customer of the merchant, as a completed checkout records it."""
    _, plan = await usage_plan(api)
    return (await subscribe(api, plan, user_id))["userId"]


async def grants(api: Api, user_id: str, **params: str) -> Any:
    found = await api.get(f"/api/v1/customers/{user_id}/credit-grants", **params)
    assert found.status_code == 200, found.text
    return found.json()


async def balance(api: Api, user_id: str) -> Any:
    found = await api.get(f"/api/v1/customers/{user_id}/credit-balance")
    assert found.status_code == 200, found.text
    return found.json()


async def history(api: Api, user_id: str, **params: str) -> Any:
    found = await api.get(f"/api/v1/customers/{user_id}/credit-history", **params)
    assert found.status_code == 200, found.text
    return found.json()


async def relay_settlement(api: Api) -> None:
    """Settlement's outbox relayed: invoicing learns who holds credits."""
    relay = settlement_outbox(api.platform.settlements)
    while await relay.relay_once():
        pass


async def stored_grants(db: asyncpg.Connection, merchant_id: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM settlement.credit_grants WHERE merchant_id = $1", merchant_id
    )
    return count


async def test_grants_are_listed_newest_first_and_the_balance_and_history_follow(
    api: Api,
) -> None:
    user = await customer(api, "usr_credits")
    now = api.platform.clock.now()
    expire = (now + timedelta(days=30)).replace(microsecond=0)
    body = {
        "amount": "25.5",
        "priority": 5,
        "expireTime": rfc3339(expire),
        "description": "Launch promotion",
    }
    created = await api.post(
        f"/api/v1/customers/{user}/credit-grants", body, **{"Idempotency-Key": "grant-1"}
    )
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["id"].startswith("crg_")
    assert {k: v for k, v in first.items() if k != "id"} == {
        "userId": user,
        "source": "PROMOTIONAL",
        "amount": "25.500000",
        "remaining": "25.500000",
        "priority": 5,
        "expireTime": rfc3339(expire),
        "description": "Launch promotion",
        "reference": "",
        "status": "ACTIVE",
        "createTime": rfc3339(now),
    }
    again = await api.post(
        f"/api/v1/customers/{user}/credit-grants", body, **{"Idempotency-Key": "grant-1"}
    )
    assert (again.status_code, again.json(), again.headers["Idempotent-Replayed"]) == (
        201,
        first,
        "true",
    )

    # A JSON number, no expiry, no priority: never expires, priority 0.
    second = await api.post(f"/api/v1/customers/{user}/credit-grants", {"amount": 4})
    assert second.status_code == 201, second.text
    never = second.json()
    assert (never["amount"], never["remaining"], never["priority"], never["status"]) == (
        "4.000000",
        "4.000000",
        0,
        "ACTIVE",
    )
    assert ("expireTime" in never, never["description"]) == (False, "")

    listed = await grants(api, user)
    assert ([g["id"] for g in listed["data"]], listed["hasMore"]) == (
        [never["id"], first["id"]],
        False,
    )
    assert listed["data"] == [never, first]
    one = await grants(api, user, limit="1")
    rest = await grants(api, user, limit="1", startingAfter=one["nextStartingAfter"])
    assert [[g["id"] for g in p["data"]] for p in (one, rest)] == [[never["id"]], [first["id"]]]
    assert (one["hasMore"], rest["hasMore"], rest["nextStartingAfter"]) == (True, False, None)

    assert await balance(api, user) == {
        "userId": user,
        "balance": "29.500000",
        "expiring": "25.500000",
        "nextExpireTime": rfc3339(expire),
        "currency": "USDC",
    }

    entries = await history(api, user)
    assert entries["hasMore"] is False
    assert [
        (e["kind"], e["reference"], e["account"], e["debit"], e["credit"], e["currency"])
        for e in entries["data"]
    ] == [
        ("credit_grant", never["id"], f"credit:{user}", "0.000000", "4.000000", "USDC"),
        ("credit_grant", first["id"], f"credit:{user}", "0.000000", "25.500000", "USDC"),
    ]
    newest = await history(api, user, limit="1")
    assert ([e["reference"] for e in newest["data"]], newest["hasMore"]) == ([never["id"]], True)
    # The same account in the merchant's ledger: credited by the grants.
    ledger = await api.get("/api/v1/ledger/balances", account=f"credit:{user}")
    assert [b["debitBalance"] for b in ledger.json()["data"]] == ["-29.500000"]


async def test_a_retry_the_gateway_forgot_grants_once(api: Api, db: asyncpg.Connection) -> None:
    """The gateway forgets a key whose call failed on its side (a deadline passed while settlement
    granted); settlement still knows the same request by the key it was given."""
    user = await customer(api, "usr_credits_retry")
    body = {"amount": "7", "description": "Goodwill"}
    path = f"/api/v1/customers/{user}/credit-grants"
    first = await api.post(path, body, **{"Idempotency-Key": "grant-retry"})
    assert first.status_code == 201, first.text
    await db.execute(
        "DELETE FROM gateway.idempotent_responses WHERE merchant_id = $1", api.merchant_id
    )
    retried = await api.post(path, body, **{"Idempotency-Key": "grant-retry"})
    assert (retried.status_code, retried.json()) == (201, first.json())
    assert "Idempotent-Replayed" not in retried.headers
    # Another key is another request; another body under the key is the gateway's 409.
    other = await api.post(path, body, **{"Idempotency-Key": "grant-other"})
    changed = await api.post(path, {"amount": "8"}, **{"Idempotency-Key": "grant-other"})
    assert other.status_code == 201, other.text
    assert (changed.status_code, changed.json()["error"]["code"]) == (
        409,
        "idempotency_key_reused",
    )
    assert [g["id"] for g in (await grants(api, user))["data"]] == [
        other.json()["id"],
        first.json()["id"],
    ]
    assert (await balance(api, user))["balance"] == "14.000000"


async def test_refused_grants_name_the_param_and_store_nothing(
    api: Api, db: asyncpg.Connection
) -> None:
    user = await customer(api, "usr_credits_refused")
    now = api.platform.clock.now()
    refused = [
        ({"amount": "0"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.0000001"}, "amount"),
        ({"amount": "1e15"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({}, "amount"),
        ({"amount": "1", "expireTime": rfc3339(now - timedelta(seconds=1))}, "expireTime"),
        ({"amount": "1", "expireTime": rfc3339(now)}, "expireTime"),
        ({"amount": "1", "expireTime": "2027-01-01T00:00:00"}, "expireTime"),
        ({"amount": "1", "priority": 1001}, "priority"),
        ({"amount": "1", "priority": -1}, "priority"),
        # Beyond what the gRPC field holds: the gateway's own refusal, named the same.
        ({"amount": "1", "priority": 2**31}, "priority"),
        ({"amount": "1", "priority": "3"}, "priority"),
        ({"amount": "1", "description": "x" * 501}, "description"),
    ]
    answers = []
    for index, (body, _) in enumerate(refused):
        response = await api.post(
            f"/api/v1/customers/{user}/credit-grants", body, **{"Idempotency-Key": f"bad-{index}"}
        )
        answers.append((response.status_code, response.json()["error"]["param"]))
    assert answers == [(400, param) for _, param in refused]
    assert await stored_grants(db, api.merchant_id) == 0
    assert (await grants(api, user))["data"] == []
    assert await balance(api, user) == {
        "userId": user,
        "balance": "0.000000",
        "expiring": "0.000000",
        "currency": "USDC",
    }
    assert (await history(api, user))["data"] == []
    # A refused request is not stored: its key is free for the corrected one.
    fixed = await api.post(
        f"/api/v1/customers/{user}/credit-grants", {"amount": "1"}, **{"Idempotency-Key": "bad-0"}
    )
    assert (fixed.status_code, fixed.json()["amount"]) == (201, "1.000000")


async def test_a_customer_the_merchant_lacks_is_404_and_another_merchants_stay_its_own(
    api: Api, database_url: str, db: asyncpg.Connection
) -> None:
    user = await customer(api, "usr_credits_shared")
    granted = await api.post(f"/api/v1/customers/{user}/credit-grants", {"amount": "3"})
    assert granted.status_code == 201, granted.text

    missing = "usr_nobody"
    answers = [
        await api.post(f"/api/v1/customers/{missing}/credit-grants", {"amount": "1"}),
        await api.get(f"/api/v1/customers/{missing}/credit-grants"),
        await api.get(f"/api/v1/customers/{missing}/credit-balance"),
        await api.get(f"/api/v1/customers/{missing}/credit-history"),
    ]
    assert [(a.status_code, a.json()["error"]["param"]) for a in answers] == [(404, "id")] * 4

    # Another merchant with a customer of the same id: its own, empty credits.
    other_id, other_key, other_wallet = await new_merchant(database_url, api.platform)
    async with httpx.AsyncClient(
        base_url=str(api.client.base_url),
        headers={"Authorization": f"Bearer {other_key}"},
        trust_env=False,
        timeout=30,
    ) as client:
        other = Api(client, other_id, other_key, api.platform, other_wallet)
        assert await customer(other, user) == user
        assert (await grants(other, user))["data"] == []
        assert (await balance(other, user))["balance"] == "0.000000"
        assert (await history(other, user))["data"] == []
        theirs = await other.post(f"/api/v1/customers/{user}/credit-grants", {"amount": "2"})
        assert theirs.status_code == 201, theirs.text
    assert [g["id"] for g in (await grants(api, user))["data"]] == [granted.json()["id"]]
    assert (await balance(api, user))["balance"] == "3.000000"
    assert (await stored_grants(db, api.merchant_id), await stored_grants(db, other_id)) == (1, 1)


async def test_credits_pay_the_customers_invoices_and_show_on_them(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan, "usr_credits_invoices")
    user = subscription["userId"]
    path = f"/api/v1/customers/{user}/credit-grants"

    def invoice_body(amount: str) -> dict[str, str]:
        return {"subscriptionId": subscription["id"], "paymentPlanId": plan["id"], "amount": amount}

    # Before any grant: nothing applied.
    plain = await api.post("/api/v1/invoices", invoice_body("1"))
    assert plain.status_code == 200, plain.text
    assert (plain.json()["creditsApplied"], plain.json()["amount"], plain.json()["status"]) == (
        "0.000000",
        "1.000000",
        "OPEN",
    )

    expire = (api.platform.clock.now() + timedelta(days=10)).replace(microsecond=0)
    soon = await api.post(path, {"amount": "3", "expireTime": rfc3339(expire)})
    later = await api.post(path, {"amount": "4", "priority": 1})
    assert (soon.status_code, later.status_code) == (201, 201)
    await relay_settlement(api)

    # Priority 0 first (the expiring 3), then 2 of the priority-1 grant: paid whole.
    paid = await api.post("/api/v1/invoices", invoice_body("5"))
    assert paid.status_code == 200, paid.text
    first = paid.json()
    assert (first["creditsApplied"], first["amount"], first["status"]) == (
        "5.000000",
        "0.000000",
        "PAID",
    )
    assert [(line["description"], line["amount"]) for line in first["lines"]] == [
        ("Amount computed by the merchant", "5.000000"),
        ("Credits applied", "-5.000000"),
    ]
    assert [(g["id"], g["remaining"], g["status"]) for g in (await grants(api, user))["data"]] == [
        (later.json()["id"], "2.000000", "ACTIVE"),
        (soon.json()["id"], "0.000000", "SPENT"),
    ]
    assert await balance(api, user) == {
        "userId": user,
        "balance": "2.000000",
        "expiring": "0.000000",
        "currency": "USDC",
    }

    # What is left pays part of the next one, which stays owed.
    owed = await api.post("/api/v1/invoices", invoice_body("10"))
    assert owed.status_code == 200, owed.text
    second = owed.json()
    assert (second["creditsApplied"], second["amount"], second["status"]) == (
        "2.000000",
        "8.000000",
        "OPEN",
    )
    read = (await api.get(f"/api/v1/invoices/{second['id']}")).json()
    assert (read["creditsApplied"], read["amount"]) == ("2.000000", "8.000000")
    listed = (await api.get("/api/v1/invoices", subscriptionId=subscription["id"])).json()
    assert {i["id"]: i["creditsApplied"] for i in listed["data"]} == {
        plain.json()["id"]: "0.000000",
        first["id"]: "5.000000",
        second["id"]: "2.000000",
    }
    assert (await balance(api, user))["balance"] == "0.000000"

    entries = (await history(api, user))["data"]
    assert [(e["kind"], e["reference"], e["debit"], e["credit"]) for e in entries] == [
        ("credit_applied", second["id"], "2.000000", "0.000000"),
        ("credit_applied", first["id"], "5.000000", "0.000000"),
        ("credit_grant", later.json()["id"], "0.000000", "4.000000"),
        ("credit_grant", soon.json()["id"], "0.000000", "3.000000"),
    ]
    assert {e["account"] for e in entries} == {f"credit:{user}"}


async def test_a_top_up_invoice_sells_credits_and_credits_never_pay_it(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan, "usr_top_up")
    user = subscription["userId"]
    assert (
        await api.post(f"/api/v1/customers/{user}/credit-grants", {"amount": "9"})
    ).status_code == 201
    await relay_settlement(api)

    created = await api.post(
        "/api/v1/invoices",
        {
            "subscriptionId": subscription["id"],
            "paymentPlanId": plan["id"],
            "amount": "25",
            "topUp": True,
        },
    )

    assert created.status_code == 200, created.text
    top_up = created.json()
    assert (top_up["topUp"], top_up["status"], top_up["amount"], top_up["creditsApplied"]) == (
        True,
        "OPEN",
        "25.000000",
        "0.000000",
    )
    assert [(line["description"], line["amount"]) for line in top_up["lines"]] == [
        ("Prepaid credits", "25.000000")
    ]
    # Payable on the hosted invoice page, like any invoice.
    assert top_up["paymentRequest"]["amount"] == "25.000000"
    await relay(api.platform)  # the ledger records the top-up
    accounts = {"account": ["top_ups", f"receivable:{user}"]}
    found = await api.client.get("/api/v1/ledger/balances", params=accounts)
    assert [(b["account"], b["debitBalance"]) for b in found.json()["data"]] == [
        ("top_ups", "-25.000000"),
        (f"receivable:{user}", "25.000000"),
    ]
    assert (await balance(api, user))["balance"] == "9.000000"
    refused = await api.post(
        "/api/v1/invoices",
        {
            "subscriptionId": subscription["id"],
            "paymentPlanId": plan["id"],
            "amount": "1",
            "topUp": True,
            "periodStart": "2027-01-01T00:00:00Z",
            "periodEnd": "2027-02-01T00:00:00Z",
        },
    )
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "periodStart")


async def test_an_auto_top_up_over_rest(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan, "usr_auto_top_up")
    path = f"/api/v1/subscriptions/{subscription['id']}/auto-top-up"
    unset = await api.get(path)
    assert (unset.status_code, unset.json()) == (
        200,
        {"subscriptionId": subscription["id"], "enabled": False, "threshold": "", "amount": ""},
    )

    refused = await api.post(path, {"threshold": "1", "amount": "0"})
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "amount")
    set_ = await api.post(path, {"threshold": "1", "amount": "20"})

    assert set_.status_code == 200, set_.text
    assert {k: set_.json()[k] for k in ("enabled", "threshold", "amount")} == {
        "enabled": True,
        "threshold": "1.000000",
        "amount": "20.000000",
    }
    assert (await api.get(path)).json() == set_.json()
    # No credits yet: a top-up is invoiced at once.
    listed = (await api.get("/api/v1/invoices", subscriptionId=subscription["id"])).json()
    assert [(i["topUp"], i["amount"], i["status"]) for i in listed["data"]] == [
        (True, "20.000000", "OPEN")
    ]
    removed = await api.post(path, {"enabled": False})
    assert removed.json()["enabled"] is False
    assert (await api.get(path)).json()["enabled"] is False
    missing = await api.get("/api/v1/subscriptions/sub_missing/auto-top-up")
    assert (missing.status_code, missing.json()["error"]["param"]) == (404, "subscriptionId")


async def test_the_real_time_balance_burns_down_with_each_event(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan, "usr_burn_down")
    user = subscription["userId"]
    await api.post(f"/api/v1/customers/{user}/credit-grants", {"amount": "1"})
    await relay_settlement(api)
    path = f"/api/v1/subscriptions/{subscription['id']}/balance"
    assert {
        k: (await api.get(path)).json()[k] for k in ("creditBalance", "consumed", "balance")
    } == {
        "creditBalance": "1.000000",
        "consumed": "0.000000",
        "balance": "1.000000",
    }

    for quantity, balance in (("30000", "0.700000"), ("80000", "-0.100000")):
        recorded = await api.post("/api/v1/usage-events", event(subscription, quantity))
        assert recorded.status_code in (200, 201), recorded.text
        found = (await api.get(path)).json()
        assert found["balance"] == balance

    assert (found["consumed"], found["lines"][0]["quantity"]) == ("1.100000", "110000")
    assert (found["periodStart"], found["periodEnd"]) == (
        subscription["currentPeriodStart"],
        subscription["currentPeriodEnd"],
    )
    missing = await api.get("/api/v1/subscriptions/sub_missing/balance")
    assert (missing.status_code, missing.json()["error"]["param"]) == (404, "subscriptionId")

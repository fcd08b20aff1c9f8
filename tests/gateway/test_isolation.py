"""Every REST endpoint called by a second merchant on the first one's objects: 404 or empty, never
the other's data; and no client picks its merchant (an x-merchant-id header or a merchantId in
the body is ignored: what is created lands under the API key's merchant). The public relay takes
the merchant from the id it is given, and pays only that payable's own request: another
merchant's payment posted to the owner's invoice or session is refused and sends nothing."""

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from devstack.chain import Anvil, MockUsdc
from devstack.mandates import Mandates
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.conftest import Api, new_merchant
from tests.gateway.test_invoice_relay import open_invoice
from tests.gateway.test_mandate_enrolment import collector_nonce, completed_session, enrolment, view
from tests.gateway.test_rest_api import relay, subscribe
from tests.gateway.wallet import PAYER, relayer_nonce, signed

# Only in the owner's names and texts: it must never reach the other merchant.
MARKER = "owner-only-7f3a"
NOT_FOUND, EMPTY, REJECTED, OWN = "404", "empty list", "rejected", "created as its own"
NO_ACCESS = "no access"
# The ledger: the other merchant's account of that name holds nothing; its report is its own.
ZERO, OWN_REPORT = "zero balance", "its own report"
# A record every merchant has one of (its payout wallet): the other merchant gets its own.
ITS_OWN = "its own record"
# Settings every merchant has: the other merchant reads and changes its own (the owner's are
# CANCEL, the other's stay the default PAST_DUE).
ITS_OWN_SETTINGS = "its own settings"
# The public relay, given the other merchant's own signed payment for one of the owner's
# payables: it pays only the payable's own request, so it is refused and sends nothing.
NOT_ITS_PAYMENT = "refused: another request's payment"
PERIOD = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}
# Auto-pay enrolment, public: the proposal of the owner's session names the owner's payout wallet
# whoever asks; a mandate signed for the other merchant's wallet on the owner's terms is refused
# (the contract's signature check: the wallet comes from the records) and relays nothing.
OWNERS_PROPOSAL = "the session's own proposal"
NOT_ITS_MANDATE = "refused: a mandate for another wallet"


@dataclass(frozen=True)
class Probe:
    """One request of the other merchant; `{name}` in it is the owner's object of that kind."""

    path: str
    answer: str = NOT_FOUND
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    # For OWN: the list where the created object shows for its creator, not for the owner.
    listed_at: str = ""
    # Public: no merchant to pick, so no merchantId is added to its body.
    public: bool = False


PROBES: dict[tuple[str, str], Probe] = {
    ("POST", "/api/v1/services"): Probe(
        "/api/v1/services", OWN, {"name": "Mine"}, listed_at="/api/v1/services"
    ),
    ("GET", "/api/v1/services"): Probe("/api/v1/services", EMPTY),
    ("GET", "/api/v1/services/{service_id}"): Probe("/api/v1/services/{service}"),
    ("POST", "/api/v1/services/{service_id}/plans"): Probe(
        "/api/v1/services/{service}/plans",
        body={"name": "P", "pricingType": "USAGE_BASED", "billingInterval": "MONTH", "amount": 1},
    ),
    ("GET", "/api/v1/services/{service_id}/plans"): Probe(
        "/api/v1/services/{service}/plans", EMPTY
    ),
    ("GET", "/api/v1/plans/{plan_id}"): Probe("/api/v1/plans/{plan}"),
    ("PATCH", "/api/v1/plans/{plan_id}"): Probe("/api/v1/plans/{plan}", body={"usageCeiling": 9}),
    ("POST", "/api/v1/plans/{plan_id}/versions"): Probe(
        "/api/v1/plans/{plan}/versions", body={"amount": 2}
    ),
    ("POST", "/api/v1/plans/{plan_id}/migrations"): Probe(
        "/api/v1/plans/{plan}/migrations", body={"dryRun": True}
    ),
    ("POST", "/api/v1/checkout-sessions"): Probe(
        "/api/v1/checkout-sessions",
        body={
            "planId": "{plan}",
            "successUrl": "https://other.example/ok",
            "cancelUrl": "https://other.example/no",
        },
    ),
    ("GET", "/api/v1/checkout-sessions/{session_id}"): Probe("/api/v1/checkout-sessions/{session}"),
    ("POST", "/api/v1/checkout-sessions/{session_id}/complete"): Probe(
        "/api/v1/checkout-sessions/{session}/complete", body={}
    ),
    ("GET", "/api/v1/subscriptions"): Probe("/api/v1/subscriptions", EMPTY),
    ("GET", "/api/v1/customers"): Probe(
        "/api/v1/customers", EMPTY, query={"email": f"{MARKER}@example.com"}
    ),
    ("GET", "/api/v1/customers/{customer_id}"): Probe("/api/v1/customers/{customer}"),
    # Credits: the customer is the owner's (invoicing's records), so 404 before settlement.
    ("POST", "/api/v1/customers/{customer_id}/credit-grants"): Probe(
        "/api/v1/customers/{user}/credit-grants", body={"amount": "1", "priority": 1}
    ),
    ("GET", "/api/v1/customers/{customer_id}/credit-grants"): Probe(
        "/api/v1/customers/{user}/credit-grants"
    ),
    ("GET", "/api/v1/customers/{customer_id}/credit-balance"): Probe(
        "/api/v1/customers/{user}/credit-balance"
    ),
    ("GET", "/api/v1/customers/{customer_id}/credit-history"): Probe(
        "/api/v1/customers/{user}/credit-history"
    ),
    ("GET", "/api/v1/access"): Probe(
        "/api/v1/access", NO_ACCESS, query={"email": f"{MARKER}@example.com"}
    ),
    ("GET", "/api/v1/subscriptions/{subscription_id}"): Probe(
        "/api/v1/subscriptions/{subscription}"
    ),
    ("POST", "/api/v1/subscriptions/{subscription_id}/cancel"): Probe(
        "/api/v1/subscriptions/{subscription}/cancel", body={}
    ),
    ("POST", "/api/v1/subscriptions/{subscription_id}/change-plan"): Probe(
        "/api/v1/subscriptions/{subscription}/change-plan", body={"planId": "{plan}"}
    ),
    ("POST", "/api/v1/subscriptions/{subscription_id}/pause"): Probe(
        "/api/v1/subscriptions/{subscription}/pause", body={}
    ),
    ("POST", "/api/v1/subscriptions/{subscription_id}/resume"): Probe(
        "/api/v1/subscriptions/{subscription}/resume", body={}
    ),
    ("POST", "/api/v1/subscriptions/{subscription_id}/test-clock/advance"): Probe(
        "/api/v1/subscriptions/{subscription}/test-clock/advance", body={"seconds": 86400}
    ),
    ("GET", "/api/v1/subscriptions/{subscription_id}/balance"): Probe(
        "/api/v1/subscriptions/{subscription}/balance"
    ),
    ("POST", "/api/v1/coupons"): Probe(
        "/api/v1/coupons",
        OWN,
        {"name": "Mine", "percentOff": 10, "duration": "ONCE"},
        listed_at="/api/v1/coupons",
    ),
    ("GET", "/api/v1/coupons"): Probe("/api/v1/coupons", EMPTY),
    ("GET", "/api/v1/coupons/{coupon_id}"): Probe("/api/v1/coupons/{coupon}"),
    ("POST", "/api/v1/discounts"): Probe(
        "/api/v1/discounts", body={"couponId": "{coupon}", "subscriptionId": "{subscription}"}
    ),
    ("GET", "/api/v1/discounts"): Probe(
        "/api/v1/discounts", EMPTY, query={"subscriptionId": "{subscription}"}
    ),
    ("DELETE", "/api/v1/discounts/{discount_id}"): Probe("/api/v1/discounts/{discount}"),
    ("GET", "/api/v1/entitlements/check"): Probe(
        "/api/v1/entitlements/check",
        query={"subscriptionId": "{subscription}", "eventKey": "tokens"},
    ),
    # Usage alerts: an alert on the owner's plan is 404 (on its subscription too: the test's
    # end), the owner's alert and its subscription's crossings are 404, the list is empty.
    ("POST", "/api/v1/usage-alerts"): Probe(
        "/api/v1/usage-alerts", body={"planId": "{plan}", "kind": "SPEND", "threshold": "1"}
    ),
    ("GET", "/api/v1/usage-alerts"): Probe("/api/v1/usage-alerts", EMPTY),
    ("GET", "/api/v1/usage-alerts/{alert_id}"): Probe("/api/v1/usage-alerts/{alert}"),
    ("DELETE", "/api/v1/usage-alerts/{alert_id}"): Probe("/api/v1/usage-alerts/{alert}"),
    ("GET", "/api/v1/subscriptions/{subscription_id}/alert-crossings"): Probe(
        "/api/v1/subscriptions/{subscription}/alert-crossings"
    ),
    ("GET", "/api/v1/subscriptions/{subscription_id}/auto-top-up"): Probe(
        "/api/v1/subscriptions/{subscription}/auto-top-up"
    ),
    ("POST", "/api/v1/subscriptions/{subscription_id}/auto-top-up"): Probe(
        "/api/v1/subscriptions/{subscription}/auto-top-up",
        body={"threshold": "1000", "amount": "1"},
    ),
    ("GET", "/api/v1/subscriptions/{subscription_id}/mandate"): Probe(
        "/api/v1/subscriptions/{subscription}/mandate"
    ),
    ("GET", "/api/v1/subscriptions/{subscription_id}/usage"): Probe(
        "/api/v1/subscriptions/{subscription}/usage", query=PERIOD
    ),
    ("POST", "/api/v1/invoices"): Probe(
        "/api/v1/invoices",
        body={"subscriptionId": "{subscription}", "paymentPlanId": "{plan}", "amount": "1"},
    ),
    ("GET", "/api/v1/invoices"): Probe(
        "/api/v1/invoices", EMPTY, query={"subscriptionId": "{subscription}"}
    ),
    ("GET", "/api/v1/invoices/{invoice_id}"): Probe("/api/v1/invoices/{invoice}"),
    ("GET", "/api/v1/invoices/{invoice_id}/lines"): Probe("/api/v1/invoices/{invoice}/lines"),
    ("POST", "/api/v1/invoices/{invoice_id}/finalize"): Probe(
        "/api/v1/invoices/{draft}/finalize", body={}
    ),
    ("POST", "/api/v1/invoices/{invoice_id}/void"): Probe("/api/v1/invoices/{draft}/void", body={}),
    ("POST", "/api/v1/invoices/{invoice_id}/mark-uncollectible"): Probe(
        "/api/v1/invoices/{invoice}/mark-uncollectible", body={}
    ),
    ("POST", "/api/v1/meters"): Probe(
        "/api/v1/meters", body={"serviceId": "{service}", "eventKey": "seats", "aggregation": "MAX"}
    ),
    ("GET", "/api/v1/meters"): Probe("/api/v1/meters", EMPTY, query={"serviceId": "{service}"}),
    ("GET", "/api/v1/meters/{meter_id}"): Probe("/api/v1/meters/{meter}"),
    ("POST", "/api/v1/usage-events"): Probe("/api/v1/usage-events", body="{event}"),
    ("POST", "/api/v1/usage-events/batch"): Probe(
        "/api/v1/usage-events/batch", REJECTED, {"events": ["{event}"]}
    ),
    ("GET", "/api/v1/usage-events"): Probe(
        "/api/v1/usage-events", EMPTY, query={"subscriptionId": "{subscription}"}
    ),
    ("POST", "/api/v1/usage-events/{event_id}/cancel"): Probe(
        "/api/v1/usage-events/{event_id}/cancel", body={"reason": "theirs"}
    ),
    ("POST", "/api/v1/usage-events/cancel"): Probe(
        "/api/v1/usage-events/cancel",
        body={"subscriptionId": "{subscription}", "idempotencyKey": "owned-event"},
    ),
    ("POST", "/api/v1/settlements"): Probe(
        "/api/v1/settlements",
        body={
            "invoiceId": "{invoice}",
            "referenceHash": "0x" + secrets.token_hex(32),
            "transactionHash": "0x" + secrets.token_hex(32),
            "payerWalletAddress": "0x" + "11" * 20,
        },
    ),
    ("GET", "/api/v1/settlements"): Probe(
        "/api/v1/settlements", EMPTY, query={"invoiceId": "{invoice}"}
    ),
    ("GET", "/api/v1/settlements/{settlement_id}"): Probe("/api/v1/settlements/{settlement}"),
    ("GET", "/api/v1/payout-wallet"): Probe("/api/v1/payout-wallet", ITS_OWN),
    ("GET", "/api/v1/merchant-settings"): Probe("/api/v1/merchant-settings", ITS_OWN_SETTINGS),
    ("PATCH", "/api/v1/merchant-settings"): Probe(
        "/api/v1/merchant-settings", ITS_OWN_SETTINGS, {"dunningFinalAction": "PAST_DUE"}
    ),
    ("GET", "/api/v1/ledger/balances"): Probe(
        "/api/v1/ledger/balances", ZERO, query={"account": "receivable:{user}"}
    ),
    ("GET", "/api/v1/ledger/entries"): Probe(
        "/api/v1/ledger/entries", EMPTY, query={"account": "receivable:{user}"}
    ),
    ("GET", "/api/v1/ledger/reconciliation"): Probe("/api/v1/ledger/reconciliation", OWN_REPORT),
    ("POST", "/api/v1/invoices/{invoice_id}/pay"): Probe(
        "/api/v1/invoices/{invoice}/pay", NOT_ITS_PAYMENT, "{their_payment}", public=True
    ),
    ("POST", "/api/v1/checkout-sessions/{session_id}/pay"): Probe(
        "/api/v1/checkout-sessions/{fee_session}/pay",
        NOT_ITS_PAYMENT,
        "{their_payment}",
        public=True,
    ),
    # Public: the session's own proposal (the owner's payout wallet) to anyone holding its id.
    ("GET", "/api/v1/checkout-sessions/{session_id}/mandate"): Probe(
        "/api/v1/checkout-sessions/{autopay_session}/mandate", OWNERS_PROPOSAL, public=True
    ),
    ("POST", "/api/v1/checkout-sessions/{session_id}/mandate"): Probe(
        "/api/v1/checkout-sessions/{autopay_session}/mandate",
        NOT_ITS_MANDATE,
        "{their_mandate}",
        public=True,
    ),
    ("POST", "/api/v1/webhook-endpoints"): Probe(
        "/api/v1/webhook-endpoints",
        OWN,
        {"url": "https://other.example/hooks", "eventTypes": ["*"]},
        listed_at="/api/v1/webhook-endpoints",
    ),
    ("GET", "/api/v1/webhook-endpoints"): Probe("/api/v1/webhook-endpoints", EMPTY),
    ("GET", "/api/v1/webhook-endpoints/{endpoint_id}/deliveries"): Probe(
        "/api/v1/webhook-endpoints/{endpoint}/deliveries"
    ),
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}"): Probe(
        "/api/v1/webhook-endpoints/{endpoint}", body={"description": "theirs"}
    ),
    ("DELETE", "/api/v1/webhook-endpoints/{endpoint_id}"): Probe(
        "/api/v1/webhook-endpoints/{endpoint}"
    ),
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/disable"): Probe(
        "/api/v1/webhook-endpoints/{endpoint}/disable", body={}
    ),
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/enable"): Probe(
        "/api/v1/webhook-endpoints/{endpoint}/enable", body={}
    ),
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/roll-secret"): Probe(
        "/api/v1/webhook-endpoints/{endpoint}/roll-secret", body={}
    ),
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/test"): Probe(
        "/api/v1/webhook-endpoints/{endpoint}/test", body={}
    ),
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry"): Probe(
        "/api/v1/webhook-endpoints/{endpoint}/deliveries/whd_x/retry", body={}
    ),
}


def fill(value: Any, objects: dict[str, Any]) -> Any:
    """`value` with every "{kind}" replaced by the owner's object of that kind."""
    if isinstance(value, str):
        for kind, found in objects.items():
            if value == f"{{{kind}}}":
                return found
        return value.format(**objects) if "{" in value else value
    if isinstance(value, dict):
        return {k: fill(v, objects) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, objects) for v in value]
    return value


async def owned_objects(api: Api) -> dict[str, Any]:
    """One object of every kind, owned by `api`'s merchant, with MARKER in its texts."""

    async def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await api.post(path, body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    service = await created("/api/v1/services", {"name": "Owned", "description": MARKER})
    plan = await created(
        f"/api/v1/services/{service['id']}/plans",
        {"name": MARKER, "pricingType": "USAGE_BASED", "billingInterval": "MONTH", "amount": 1},
    )
    subscription = await subscribe(api, plan)
    event = {
        "serviceId": service["id"],
        "subscriptionId": subscription["id"],
        "userId": subscription["userId"],
        "eventKey": "tokens",
        "quantity": "7",
        "idempotencyKey": "owned-event",
    }
    recorded = await created("/api/v1/usage-events", event)
    meter = await created(
        "/api/v1/meters", {"serviceId": service["id"], "eventKey": "tokens", "aggregation": "SUM"}
    )
    session = await created(
        "/api/v1/checkout-sessions",
        {
            "planId": plan["id"],
            "email": f"{MARKER}@example.com",
            "name": MARKER,
            "successUrl": f"https://owner.example/{MARKER}",
            "cancelUrl": f"https://owner.example/{MARKER}",
        },
    )
    fee_plan = await created(
        f"/api/v1/services/{service['id']}/plans",
        {"name": MARKER, "pricingType": "FIXED_RECURRING", "billingInterval": "MONTH", "amount": 2},
    )
    fee_session = await created(
        "/api/v1/checkout-sessions",
        {
            "planId": fee_plan["id"],
            "successUrl": f"https://owner.example/{MARKER}",
            "cancelUrl": f"https://owner.example/{MARKER}",
        },
    )
    autopay = await completed_session(api, "u_owner_autopay")
    invoice = await created(
        "/api/v1/invoices",
        {"subscriptionId": subscription["id"], "paymentPlanId": plan["id"], "amount": "3"},
    )
    draft = await created(
        "/api/v1/invoices",
        {
            "subscriptionId": subscription["id"],
            "paymentPlanId": plan["id"],
            "amount": "4",
            "draft": True,
        },
    )
    settlement = await created(
        "/api/v1/settlements",
        {
            "invoiceId": invoice["id"],
            "referenceHash": "0x" + secrets.token_hex(32),
            "transactionHash": "0x" + secrets.token_hex(32),
            "payerWalletAddress": "0x" + "33" * 20,
        },
    )
    endpoint = await created(
        "/api/v1/webhook-endpoints",
        {"url": f"https://owner.example/{MARKER}", "eventTypes": ["*"]},
    )
    settings = await api.client.patch(
        "/api/v1/merchant-settings", json={"dunningFinalAction": "CANCEL"}
    )
    assert settings.status_code == 200, settings.text
    grant = await api.post(
        f"/api/v1/customers/{subscription['userId']}/credit-grants",
        {"amount": "5", "description": MARKER},
    )
    assert grant.status_code == 201, grant.text
    alert = await created(
        "/api/v1/usage-alerts",
        {"planId": plan["id"], "kind": "USAGE_QUANTITY", "eventKey": "tokens", "threshold": 1000},
    )
    coupon = await created(
        "/api/v1/coupons", {"name": MARKER, "amountOff": "0.5", "duration": "FOREVER"}
    )
    discount = await created(
        "/api/v1/discounts", {"couponId": coupon["id"], "subscriptionId": subscription["id"]}
    )
    return {
        "coupon": coupon["id"],
        "discount": discount["id"],
        "service": service["id"],
        "plan": plan["id"],
        "subscription": subscription["id"],
        "event": event,
        "event_id": recorded["eventId"],
        "session": session["id"],
        "fee_session": fee_session["id"],
        "autopay_session": autopay["id"],
        "customer": session["userId"],
        "user": subscription["userId"],
        "invoice": invoice["id"],
        "draft": draft["id"],
        "settlement": settlement["id"],
        "endpoint": endpoint["id"],
        "meter": meter["id"],
        "alert": alert["id"],
    }


async def payment_of_a_third_merchant(api: Api, database_url: str, anvil: Anvil) -> Any:
    """A signed payment of an invoice of a merchant of its own (the other one's lists must stay
    empty), paying its own request."""
    merchant_id, key, wallet = await new_merchant(database_url, api.platform)
    async with httpx.AsyncClient(
        base_url=str(api.client.base_url),
        headers={"Authorization": f"Bearer {key}"},
        trust_env=False,
    ) as client:
        invoice = await open_invoice(Api(client, merchant_id, key, api.platform, wallet))
    return await signed(anvil, invoice["paymentRequest"])


def test_every_endpoint_has_an_isolation_probe(database_url: str) -> None:
    document = create_app(GatewaySettings(database_url=database_url)).openapi()
    endpoints = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/api/")
        for method in operations
    }
    assert endpoints == set(PROBES)


async def test_another_merchant_gets_404_or_empty_and_cannot_pick_a_merchant(
    api: Api, database_url: str, usdc: MockUsdc, anvil: Anvil, mandates: Mandates
) -> None:
    objects = await owned_objects(api)
    await relay(api.platform)  # settlement records the owner's invoice: the relay finds it
    before = (await api.get(f"/api/v1/subscriptions/{objects['subscription']}")).json()
    other_id, other_key, other_wallet = await new_merchant(database_url, api.platform)
    proposal = (await view(api, objects["autopay_session"]))["proposal"]
    objects["their_mandate"] = await enrolment(
        anvil, usdc, mandates, proposal, merchant=other_wallet
    )
    collector_sent = await collector_nonce(usdc, anvil)
    headers = {"Authorization": f"Bearer {other_key}", "x-merchant-id": api.merchant_id}
    async with httpx.AsyncClient(
        base_url=str(api.client.base_url), headers=headers, trust_env=False
    ) as other:
        objects["their_payment"] = await payment_of_a_third_merchant(api, database_url, anvil)
        await usdc.mint(anvil.accounts[PAYER], 500_000, anvil.accounts[0])
        sent = await relayer_nonce(usdc, anvil)
        # What the other merchant creates comes last: its lists must be empty before.
        for (method, route), probe in sorted(PROBES.items(), key=lambda p: p[1].answer == OWN):
            path = fill(probe.path, objects)
            query = fill(probe.query, objects)
            if method == "GET":
                response = await other.get(path, params=query)
            elif method == "DELETE":
                response = await other.delete(path)
            else:
                # A merchantId in the body is one more way to ask for the owner's account.
                picked = {} if probe.public else {"merchantId": api.merchant_id}
                body = {**fill(probe.body, objects), **picked}
                response = await other.request(method, path, json=body)
            where = f"{method} {route}: {response.text[:300]}"
            assert MARKER not in response.text, where
            await expect(probe, response, api, other, where)
        # One probe per route: the alert on the owner's subscription, rather than its plan.
        on_subscription = await other.post(
            "/api/v1/usage-alerts",
            json={"subscriptionId": objects["subscription"], "kind": "SPEND", "threshold": "1"},
        )
        assert on_subscription.status_code == 404, on_subscription.text
        assert (await other.get("/api/v1/usage-alerts")).json()["data"] == []
    assert await relayer_nonce(usdc, anvil) == sent
    assert await collector_nonce(usdc, anvil) == collector_sent
    plan = (await api.get(f"/api/v1/plans/{objects['plan']}")).json()
    assert plan["usageCeiling"] == "0.000000"
    after = (await api.get(f"/api/v1/subscriptions/{objects['subscription']}")).json()
    assert after == before
    statuses = [
        (await api.get(f"/api/v1/invoices/{objects[kind]}")).json()["status"]
        for kind in ("invoice", "draft")
    ]
    assert statuses == ["OPEN", "DRAFT"]
    settings = (await api.get("/api/v1/merchant-settings")).json()
    assert settings["dunningFinalAction"] == "CANCEL"
    credits = await api.get(f"/api/v1/customers/{objects['user']}/credit-grants")
    assert [(g["amount"], g["description"]) for g in credits.json()["data"]] == [
        ("5.000000", MARKER)
    ]
    alerts = (await api.get("/api/v1/usage-alerts", planId=objects["plan"])).json()["data"]
    assert [a["id"] for a in alerts] == [objects["alert"]]
    listed = await api.get("/api/v1/usage-events", subscriptionId=objects["subscription"])
    assert [(e["quantity"], "cancelTime" in e) for e in listed.json()["data"]] == [("7", False)]
    assert other_id != api.merchant_id


async def expect(
    probe: Probe, response: httpx.Response, owner: Api, other: httpx.AsyncClient, where: str
) -> None:
    if probe.answer == NOT_FOUND:
        assert response.status_code == 404, where
        assert response.json()["error"]["type"] == "invalid_request_error", where
    elif probe.answer == EMPTY:
        assert response.status_code == 200, where
        assert (response.json()["data"], response.json()["hasMore"]) == ([], False), where
    elif probe.answer == ZERO:
        assert response.status_code == 200, where
        assert [b["debitBalance"] for b in response.json()["data"]] == ["0.000000"], where
    elif probe.answer == OWN_REPORT:
        assert response.status_code == 200, where
        assert response.json()["invoicesChecked"] == "0", where
    elif probe.answer == NO_ACCESS:
        assert response.status_code == 200, where
        data = response.json()
        assert (data["hasAccess"], data["customers"], data["subscriptions"]) == (False, [], []), (
            where
        )
    elif probe.answer == ITS_OWN:
        assert response.status_code == 200, where
        assert response.json()["walletAddress"] != owner.wallet, where
    elif probe.answer == ITS_OWN_SETTINGS:
        assert response.status_code == 200, where
        assert response.json()["dunningFinalAction"] == "PAST_DUE", where
    elif probe.answer == NOT_ITS_PAYMENT:
        assert response.status_code == 400, where
        assert response.json()["error"]["param"] == "authorization.nonce", where
    elif probe.answer == OWNERS_PROPOSAL:
        assert response.status_code == 200, where
        found = response.json()
        assert found["proposal"]["merchantWalletAddress"] == owner.wallet, where
        assert found["mandate"] is None, where
    elif probe.answer == NOT_ITS_MANDATE:
        assert response.status_code == 400, where
        assert response.json()["error"]["param"] == "signature", where
    elif probe.answer == REJECTED:
        assert response.status_code == 200, where
        [result] = response.json()["results"]
        assert (result["outcome"], result["error"]["code"]) == ("REJECTED", "NOT_FOUND"), where
    else:
        assert response.status_code == 200, where
        created = response.json()["id"]
        mine = (await other.get(probe.listed_at)).json()["data"]
        theirs = (await owner.get(probe.listed_at)).json()["data"]
        assert created in [o["id"] for o in mine], where
        assert created not in [o["id"] for o in theirs], where

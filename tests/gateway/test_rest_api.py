"""Every REST endpoint through a real HTTP server, the real services and PostgreSQL."""

import asyncio
import time

import httpx

from devstack.chain import Anvil, MockUsdc
from devstack.postgres import free_port
from invoicing_svc.service_layer.relay import outbox_relay as invoicing_outbox
from settlement_svc.service_layer.relay import outbox_relay as settlement_outbox
from settlement_svc.service_layer.verification import verify_pending
from tests.conftest import CONFIRMATIONS, Platform
from tests.gateway.conftest import Api, gateway_settings, new_merchant, serving


async def usage_plan(
    api: Api, amount: object = "0.000010"
) -> tuple[dict[str, str], dict[str, str]]:
    service = (await api.post("/api/v1/services", {"name": "AI Token API"})).json()
    plan = await api.post(
        f"/api/v1/services/{service['id']}/plans",
        {
            "name": "Tokens",
            "pricingType": "USAGE_BASED",
            "billingInterval": "MONTH",
            "amount": amount,
        },
    )
    assert plan.status_code == 200, plan.text
    return service, plan.json()


async def subscribe(
    api: Api, plan: dict[str, str], user_id: str = "usr_b4e7f812"
) -> dict[str, str]:
    session = (
        await api.post(
            "/api/v1/checkout-sessions",
            {
                "planId": plan["id"],
                "userId": user_id,
                "successUrl": "https://m.example/ok",
                "cancelUrl": "https://m.example/no",
            },
        )
    ).json()
    done = (await api.post(f"/api/v1/checkout-sessions/{session['id']}/complete", {})).json()
    assert done["status"] == "COMPLETE"
    await relay(api.platform)
    subscription: dict[str, str] = (
        await api.get(f"/api/v1/subscriptions/{done['subscriptionId']}")
    ).json()
    return subscription


async def relay(platform: Platform) -> None:
    relay = invoicing_outbox(platform.invoicing)
    while await relay.relay_once():
        pass


def event(subscription: dict[str, str], quantity: object, **fields: object) -> dict[str, object]:
    return {
        "serviceId": subscription["serviceId"],
        "subscriptionId": subscription["id"],
        "userId": subscription["userId"],
        "eventKey": "token_generated",
        "quantity": quantity,
        **fields,
    }


async def test_seed_000_through_rest_from_plan_to_paid_invoice(
    api: Api, usdc: MockUsdc, anvil: Anvil
) -> None:
    service, plan = await usage_plan(api)
    assert (plan["pricingType"], plan["amount"], plan["currency"]) == (
        "USAGE_BASED",
        "0.00001",
        "USDC",
    )
    assert (await api.get(f"/api/v1/plans/{plan['id']}")).json() == plan
    assert [
        p["id"] for p in (await api.get(f"/api/v1/services/{service['id']}/plans")).json()["data"]
    ] == [plan["id"]]
    subscription = await subscribe(api, plan)
    assert subscription["status"] == "ACTIVE"
    for burst in range(10):
        recorded = await api.post(
            "/api/v1/usage-events", event(subscription, 5000, idempotencyKey=f"b{burst}")
        )
        assert (recorded.status_code, recorded.json()["outcome"]) == (200, "ACCEPTED")
    usage = await api.get(
        f"/api/v1/subscriptions/{subscription['id']}/usage",
        **{"from": subscription["currentPeriodStart"], "to": subscription["currentPeriodEnd"]},
    )
    assert usage.json()["summaries"][0]["value"] == "50000"
    advanced = await api.post(
        f"/api/v1/subscriptions/{subscription['id']}/test-clock/advance",
        {"seconds": 31 * 86400 + 7200},
    )
    assert advanced.status_code == 200, advanced.text
    await relay(api.platform)
    [invoice] = (await api.get("/api/v1/invoices", subscriptionId=subscription["id"])).json()[
        "data"
    ]
    assert (invoice["amount"], invoice["status"]) == ("0.500000", "OPEN")

    await usdc.mint(anvil.accounts[1], 500_000, anvil.accounts[0])
    transaction = await usdc.transfer(anvil.accounts[1], api.wallet, 500_000)
    # The payee comes from the record: naming another wallet is refused, naming none is fine.
    elsewhere = await api.post(
        "/api/v1/settlements",
        {
            "invoiceId": invoice["id"],
            "referenceHash": "0x" + "5e" * 32,
            "transactionHash": transaction,
            "payerWalletAddress": anvil.accounts[1],
            "merchantWalletAddress": anvil.accounts[1],
        },
    )
    assert (elsewhere.status_code, elsewhere.json()["error"]["param"]) == (
        400,
        "merchantWalletAddress",
    )
    payout = await api.get("/api/v1/payout-wallet")
    assert (payout.status_code, payout.json()["walletAddress"]) == (200, api.wallet)
    created = await api.post(
        "/api/v1/settlements",
        {
            "invoiceId": invoice["id"],
            "referenceHash": "0x" + "5e" * 32,
            "transactionHash": transaction,
            "payerWalletAddress": anvil.accounts[1],
            "merchantWalletAddress": api.wallet,
        },
    )
    assert (created.status_code, created.json()["status"]) == (200, "PENDING")
    await usdc.mine(CONFIRMATIONS)
    await verify_pending(api.platform.settlements)
    while await settlement_outbox(api.platform.settlements).relay_once():
        pass
    settlement = (await api.get(f"/api/v1/settlements/{created.json()['id']}")).json()
    assert (settlement["status"], settlement["amountPaid"]) == ("CONFIRMED", "0.500000")
    assert (await api.get(f"/api/v1/invoices/{invoice['id']}")).json()["status"] == "PAID"
    assert [
        s["id"]
        for s in (await api.get("/api/v1/settlements", invoiceId=invoice["id"])).json()["data"]
    ] == [settlement["id"]]


async def test_numbers_and_strings_are_parsed_exactly(api: Api) -> None:
    _, plan = await usage_plan(api, amount=0.000000000001)
    assert plan["amount"] == "0.000000000001"
    subscription = await subscribe(api, plan)
    # A JSON number beyond float precision, and the same as a string, both stay exact.
    for quantity in ("123456789012.123456789012", '"123456789012.123456789012"'):
        ids = (
            f'"serviceId": "{subscription["serviceId"]}", "subscriptionId": "{subscription["id"]}"'
        )
        user = f'"userId": "{subscription["userId"]}"'
        raw = f'{{{ids}, {user}, "eventKey": "k", "quantity": {quantity}}}'
        response = await api.client.post(
            "/api/v1/usage-events", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
    listed = (await api.get("/api/v1/usage-events", subscriptionId=subscription["id"])).json()[
        "data"
    ]
    assert [e["quantity"] for e in listed] == ["123456789012.123456789012"] * 2


async def test_errors_use_one_envelope_naming_the_field(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    cases = [
        (event(subscription, "-1"), 400, "quantity"),
        (event(subscription, "1", userId="usr_other"), 400, "userId"),
        (event(subscription, "1", subscriptionId="sub_missing"), 404, "subscriptionId"),
        ({"serviceId": "svc_1"}, 400, "subscriptionId"),
    ]
    for body, status, param in cases:
        response = await api.post("/api/v1/usage-events", body)
        error = response.json()["error"]
        assert (response.status_code, error["param"]) == (status, param), response.text
        assert set(error) == {"type", "code", "message", "param"}
    for raw, code in (("{not json", "invalid_json"), ('{"quantity": NaN}', "invalid_json")):
        response = await api.client.post(
            "/api/v1/usage-events", content=raw, headers={"content-type": "application/json"}
        )
        assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    missing = await api.get("/api/v1/invoices/in_missing")
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "invalid_request_error")
    unknown_route = await api.get("/api/v1/nothing-here")
    assert (unknown_route.status_code, unknown_route.json()["error"]["code"]) == (404, "not_found")
    conflict = await api.post(f"/api/v1/subscriptions/{subscription['id']}/cancel", {})
    again = await api.post(f"/api/v1/subscriptions/{subscription['id']}/cancel", {})
    assert (conflict.json()["status"], again.status_code) == ("CANCELED", 409)


async def test_a_missing_or_wrong_key_is_401(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False) as client:
        for headers in ({}, {"Authorization": "Bearer bk_nope_nope"}, {"Authorization": "Basic x"}):
            response = await client.get("/api/v1/services", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["type"] == "authentication_error"


async def test_idempotency_key_replays_and_refuses_another_body(api: Api) -> None:
    first = await api.post("/api/v1/services", {"name": "Once"}, **{"Idempotency-Key": "svc-1"})
    again = await api.post("/api/v1/services", {"name": "Once"}, **{"Idempotency-Key": "svc-1"})
    other = await api.post("/api/v1/services", {"name": "Twice"}, **{"Idempotency-Key": "svc-1"})
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_key_reused")
    names = [s["name"] for s in (await api.get("/api/v1/services")).json()["data"]]
    assert names.count("Once") == 1
    # A refused request is replayed as refused.
    bad = await api.post(
        "/api/v1/invoices",
        {"subscriptionId": "sub_x", "paymentPlanId": "plan_x", "amount": "1"},
        **{"Idempotency-Key": "inv-1"},
    )
    bad_again = await api.post(
        "/api/v1/invoices",
        {"subscriptionId": "sub_x", "paymentPlanId": "plan_x", "amount": "1"},
        **{"Idempotency-Key": "inv-1"},
    )
    assert (bad.status_code, bad_again.status_code, bad_again.json()) == (404, 404, bad.json())


async def test_a_batch_answers_each_event_and_counts_once_against_the_limit(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    events = [
        event(subscription, 1, idempotencyKey="a"),
        event(subscription, "x"),
        event(subscription, 2, idempotencyKey="a"),
    ]
    response = await api.post("/api/v1/usage-events/batch", {"events": events})
    assert response.status_code == 400  # "x" is not a number: the body is refused whole
    events[1] = event(subscription, "-1")
    before = int((await api.get("/api/v1/services")).headers["RateLimit-Remaining"])
    response = await api.post("/api/v1/usage-events/batch", {"events": events})
    # One token for the whole batch (the bucket may refill a little meanwhile).
    assert before - 1 <= int(response.headers["RateLimit-Remaining"]) <= before
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["ACCEPTED", "REJECTED", "DUPLICATE"]
    assert results[1]["error"]["field"] == "quantity"
    too_many = await api.post(
        "/api/v1/usage-events/batch", {"events": [event(subscription, 1)] * 1001}
    )
    assert (too_many.status_code, too_many.json()["error"]["param"]) == (400, "events")


async def test_rate_limit_answers_429_with_retry_after(
    database_url: str, platform: Platform
) -> None:
    settings = gateway_settings(
        database_url, platform, rate_limit_per_minute=60, rate_limit_burst=3
    )
    _, key, _ = await new_merchant(database_url, platform)
    async with (
        serving(settings, platform) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, trust_env=False
        ) as client,
    ):
        statuses = [(await client.get("/api/v1/services")).status_code for _ in range(4)]
        limited = await client.get("/api/v1/services")
    assert statuses == [200, 200, 200, 429]
    assert limited.headers["Retry-After"] == "1"
    assert (limited.headers["RateLimit-Limit"], limited.headers["RateLimit-Remaining"]) == (
        "60",
        "0",
    )
    assert limited.json()["error"]["type"] == "rate_limit_error"


async def test_a_stopped_backend_is_503_quickly(database_url: str, platform: Platform) -> None:
    settings = gateway_settings(
        database_url,
        platform,
        settlement_address=f"127.0.0.1:{free_port()}",
        backend_deadline_seconds=1,
    )
    _, key, _ = await new_merchant(database_url, platform)
    async with (
        serving(settings, platform) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, trust_env=False
        ) as client,
    ):
        started = time.perf_counter()
        down = await client.get("/api/v1/settlements")
        elapsed = time.perf_counter() - started
        ready = await client.get("/readyz")
        up = await client.get("/api/v1/services")
    assert (down.status_code, down.json()["error"]["code"]) == (503, "backend_unavailable")
    assert elapsed < 3
    assert (ready.status_code, ready.json()["backends"]["settlement"]) == (503, False)
    assert up.status_code == 200


async def test_body_size_and_operations_endpoints(api: Api) -> None:
    huge = await api.client.post(
        "/api/v1/services",
        content=b'{"name":"' + b"x" * 2_000_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "body_too_large")
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    assert (await api.get("/readyz")).json()["status"] == "ok"
    metrics = (await api.get("/metrics")).text
    assert 'gateway_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    document = (await api.get("/openapi.json")).json()
    assert "/api/v1/usage-events" in document["paths"]
    body_schema = document["paths"]["/api/v1/usage-events"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/UsageEventIn"}
    assert "quantity" in document["components"]["schemas"]["UsageEventIn"]["properties"]
    assert (await api.get("/docs")).status_code == 200


async def test_concurrent_posts_with_one_idempotency_key_run_once(api: Api) -> None:
    responses = await asyncio.gather(
        *(
            api.post("/api/v1/services", {"name": "Raced"}, **{"Idempotency-Key": "race-1"})
            for _ in range(5)
        )
    )
    created = {r.json()["id"] for r in responses if r.status_code == 200}
    assert len(created) == 1
    assert all(r.status_code in (200, 409) for r in responses)
    names = [s["name"] for s in (await api.get("/api/v1/services", limit="100")).json()["data"]]
    assert names.count("Raced") == 1


async def test_the_remaining_reads_answer_for_their_owner(api: Api) -> None:
    service, plan = await usage_plan(api)
    session = (
        await api.post(
            "/api/v1/checkout-sessions",
            {
                "planId": plan["id"],
                "email": "ada@example.com",
                "successUrl": "https://m.example/ok",
                "cancelUrl": "https://m.example/no",
            },
        )
    ).json()
    fetched = (await api.get(f"/api/v1/checkout-sessions/{session['id']}")).json()
    assert (fetched["status"], fetched["amountDue"], fetched["userId"][:4]) == (
        "OPEN",
        "0.000000",
        "usr_",
    )
    assert fetched["url"].endswith(f"/checkout/{session['id']}")
    meter = await api.post(
        "/api/v1/meters", {"serviceId": service["id"], "eventKey": "seats", "aggregation": "LAST"}
    )
    listed = (await api.get("/api/v1/meters", serviceId=service["id"])).json()
    assert [m["id"] for m in listed["data"]] == [meter.json()["id"]]
    assert (listed["hasMore"], listed["nextStartingAfter"]) == (False, None)
    endpoint = (
        await api.post(
            "/api/v1/webhook-endpoints",
            {"url": "https://m.example/h", "eventTypes": ["invoice.paid"]},
        )
    ).json()
    assert endpoint["secret"].startswith("whsec_")
    endpoints = (await api.get("/api/v1/webhook-endpoints")).json()["data"]
    assert [(e["id"], e["secret"]) for e in endpoints] == [(endpoint["id"], "")]
    deliveries = await api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries")
    assert (deliveries.status_code, deliveries.json()["data"]) == (200, [])
    first_page = (await api.get("/api/v1/services", limit="1")).json()
    assert first_page["hasMore"] is False and len(first_page["data"]) == 1


async def test_the_checkout_page_refuses_a_reused_payment_and_stays_open(
    api: Api, usdc: MockUsdc, anvil: Anvil
) -> None:
    service = (await api.post("/api/v1/services", {"name": "Seats"})).json()
    plan = (
        await api.post(
            f"/api/v1/services/{service['id']}/plans",
            {
                "name": "Monthly",
                "pricingType": "FIXED_RECURRING",
                "billingInterval": "MONTH",
                "amount": 1,
            },
        )
    ).json()
    await usdc.mint(anvil.accounts[1], 1_000_000, anvil.accounts[0])
    transaction = await usdc.transfer(anvil.accounts[1], api.wallet, 1_000_000)
    invoice_service, invoice_plan = await usage_plan(api)
    subscription = await subscribe(api, invoice_plan)
    invoice = (
        await api.post(
            "/api/v1/invoices",
            {
                "subscriptionId": subscription["id"],
                "paymentPlanId": invoice_plan["id"],
                "amount": 1,
            },
        )
    ).json()
    used = await api.post(
        "/api/v1/settlements",
        {
            "invoiceId": invoice["id"],
            "referenceHash": "0x" + "11" * 32,
            "transactionHash": transaction,
            "payerWalletAddress": anvil.accounts[1],
            "merchantWalletAddress": api.wallet,
        },
    )
    assert used.status_code == 200
    session = (
        await api.post(
            "/api/v1/checkout-sessions",
            {
                "planId": plan["id"],
                "successUrl": "https://m.example/ok",
                "cancelUrl": "https://m.example/no",
            },
        )
    ).json()

    form = {"payer_wallet_address": anvil.accounts[1], "transaction_hash": transaction}
    page = await api.client.post(f"/checkout/{session['id']}", data=form)

    assert page.status_code == 409
    assert "this transaction already settles another payment" in page.text
    assert (await api.get(f"/api/v1/checkout-sessions/{session['id']}")).json()["status"] == "OPEN"
    assert invoice_service["name"] == "AI Token API"

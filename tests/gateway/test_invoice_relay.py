"""Paying without an API key over HTTP: the payment request on the invoice and checkout JSON, and
the public relay of x402 `exact` payloads, against the real gateway, services and anvil. A refused
authorization sends nothing: the relayer's nonce, the payer's balance and the token's
authorizationState stay as they were."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from eth_account import Account
from x402 import PaymentRequirements
from x402.mechanisms.evm.exact import ExactEvmScheme

from devstack import eip3009
from devstack.chain import Anvil, MockUsdc
from tests.conftest import Platform
from tests.gateway.conftest import Api, gateway_settings, serving
from tests.gateway.test_checkout_page import ok, open_session, settle
from tests.gateway.test_rest_api import relay, subscribe, usage_plan
from tests.gateway.wallet import PAYER, authorization, relayer_nonce, signed, unix

REFERENCE = re.compile(r"^0x[0-9a-f]{64}$")
# Makes the body of one request.
Body = Callable[[], Awaitable[dict[str, Any]]]


async def open_invoice(api: Api, amount: str = "0.5", draft: bool = False) -> dict[str, Any]:
    """An invoice of `amount` (Retempo's way), recorded by settlement (its ledger), so the
    public endpoints find its owner."""
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    body = {"subscriptionId": subscription["id"], "paymentPlanId": plan["id"], "amount": amount}
    created = await ok(await api.post("/api/v1/invoices", {**body, "draft": draft}))
    await relay(api.platform)
    return created


async def chain_state(usdc: MockUsdc, anvil: Anvil, reference: str) -> tuple[int, int, bool]:
    """The relayer's nonce, the payer's balance, and whether the payer's nonce `reference` is
    used."""
    payer = anvil.accounts[PAYER]
    return (
        await relayer_nonce(usdc, anvil),
        await usdc.balance(payer),
        await usdc.authorization_state(payer, reference),
    )


def public(gateway_url: str) -> httpx.AsyncClient:
    """A client without an API key."""
    return httpx.AsyncClient(base_url=gateway_url, trust_env=False, timeout=30)


async def test_invoice_answers_carry_their_payment_request(api: Api, usdc: MockUsdc) -> None:
    draft = await open_invoice(api, "0.5", draft=True)
    assert (draft["status"], draft["paymentRequest"]) == ("DRAFT", None)
    finalized = await ok(await api.post(f"/api/v1/invoices/{draft['id']}/finalize", {}))
    request = finalized["paymentRequest"]
    assert REFERENCE.match(request["referenceHash"])
    assert {k: v for k, v in request.items() if k not in ("referenceHash", "expireTime")} == {
        "invoiceId": draft["id"],
        "checkoutSessionId": "",
        "userId": draft["userId"],
        "amount": "0.500000",
        "amountBaseUnits": "500000",
        "payeeWalletAddress": api.wallet,
        "tokenAddress": usdc.address,
        "chainId": "31337",
        "uri": f"ethereum:{usdc.address}@31337/transfer?address={api.wallet}&uint256=500000",
        "hostedUrl": f"http://127.0.0.1:8080/pay/{draft['id']}",
        "status": "OPEN",
        "settlementId": "",
        "createTime": request["createTime"],
        "tokenName": "USD Coin",
        "tokenVersion": "2",
    }
    # Issued for 7 days (settlement's SETTLEMENT_PAYMENT_REQUEST_TTL).
    assert unix(request["expireTime"]) - unix(request["createTime"]) == 7 * 86400
    # One live request per invoice: every read answers it.
    read = await ok(await api.get(f"/api/v1/invoices/{draft['id']}"))
    assert read["paymentRequest"] == request

    created = await open_invoice(api, "1.25")
    assert created["paymentRequest"]["amountBaseUnits"] == "1250000"
    assert created["paymentRequest"]["referenceHash"] != request["referenceHash"]
    listed = await ok(await api.get("/api/v1/invoices", subscriptionId=created["subscriptionId"]))
    assert [("paymentRequest" in i, i["id"]) for i in listed["data"]] == [(False, created["id"])]

    voided = await ok(await api.post(f"/api/v1/invoices/{draft['id']}/void", {}))
    assert voided["status"] == "VOID"
    assert (await ok(await api.get(f"/api/v1/invoices/{draft['id']}")))["paymentRequest"] is None


async def test_each_bad_authorization_is_refused_with_its_field_before_anything_is_sent(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil
) -> None:
    invoice = await open_invoice(api)
    request = invoice["paymentRequest"]
    await usdc.mint(anvil.accounts[PAYER], 500_000, anvil.accounts[0])
    before = await chain_state(usdc, anvil, request["referenceHash"])
    chain_time = await usdc.block_time()
    broke = Account.create()
    broke_fields: dict[str, int | str] = {**authorization(broke.address, request)}
    broke_signature = eip3009.sign(
        broke.key.to_0x_hex(),
        request["tokenName"],
        request["tokenVersion"],
        int(request["chainId"]),
        request["tokenAddress"],
        broke_fields,
    )
    good = await signed(anvil, request)

    def changed(**fields: Any) -> Body:
        return _async({**good, **fields})

    async def with_fields(**overrides: str) -> dict[str, Any]:
        return await signed(anvil, request, overrides=overrides)

    cases: list[tuple[str, Body, int, str, str]] = [
        (
            "short",
            lambda: with_fields(value="400000"),
            400,
            "authorization.value",
            "authorization.value must be 500000 base units (the amount due), not 400000",
        ),
        (
            "another payee",
            lambda: with_fields(to=anvil.accounts[5]),
            400,
            "authorization.to",
            f"authorization.to_address must be the merchant's wallet {api.wallet}",
        ),
        (
            "another nonce",
            lambda: with_fields(nonce="0x" + "ab" * 32),
            400,
            "authorization.nonce",
            "authorization.nonce must be the payment request's reference hash "
            + request["referenceHash"],
        ),
        (
            "not valid yet",
            lambda: with_fields(validAfter=str(chain_time + 3600)),
            400,
            "authorization.validAfter",
            "",
        ),
        (
            "valid past the request's expiry",
            lambda: with_fields(validBefore=str(unix(request["expireTime"]) + 1)),
            400,
            "authorization.validBefore",
            "authorization.valid_before must not be after the payment request's expiry "
            f"{unix(request['expireTime'])}",
        ),
        (
            "expiring before it can be mined",
            lambda: with_fields(validBefore=str(chain_time + 30)),
            400,
            "authorization.validBefore",
            "",
        ),
        (
            "signed by another key",
            lambda: signed(anvil, request, signer=4),
            400,
            "signature",
            f"authorization.signature is not {anvil.accounts[PAYER]}'s signature of this "
            "authorization",
        ),
        (
            "malformed signature",
            changed(signature="0x1234"),
            400,
            "signature",
            "authorization.signature must be 0x followed by 130 hex digits (r, s, v)",
        ),
        (
            "a number for a string",
            changed(authorization={**good["authorization"], "value": 500000}),
            400,
            "authorization.value",
            "authorization.value: Input should be a valid string",
        ),
        (
            "an unknown field",
            changed(authorization={**good["authorization"], "memo": "x"}),
            400,
            "authorization.memo",
            "authorization.memo: Extra inputs are not permitted",
        ),
        ("an unknown top-level field", changed(extra="x"), 400, "extra", ""),
        ("no signature", _async({"authorization": good["authorization"]}), 400, "signature", ""),
        (
            "a payer without the money",
            _async({"authorization": broke_fields, "signature": broke_signature}),
            409,
            "authorization.value",
            "the payer holds 0 base units; the authorization moves 500000",
        ),
    ]
    path = f"/api/v1/invoices/{invoice['id']}/pay"
    answers, messages = [], {}
    async with public(gateway_url) as client:
        for name, body, *_ in cases:
            answer = await client.post(path, json=await body())
            error = answer.json()["error"]
            answers.append((name, answer.status_code, error["param"]))
            messages[name] = error["message"]
        huge = await client.post(path, content=b'{"signature": "' + b"0" * 5000 + b'"}')
        unknown = await client.post("/api/v1/invoices/in_nobody/pay", json=good)
    assert answers == [(name, status, param) for name, _, status, param, _ in cases]
    # Where the message is fixed, it is exactly settlement's (or the schema's).
    assert {name: messages[name] for name, *_, message in cases if message} == {
        name: message for name, *_, message in cases if message
    }
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "body_too_large")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    assert await chain_state(usdc, anvil, request["referenceHash"]) == before
    # And the one good authorization still pays.
    async with public(gateway_url) as client:
        assert (await client.post(path, json=good)).status_code == 202


def _async(value: dict[str, Any]) -> Body:
    async def body() -> dict[str, Any]:
        return value

    return body


async def test_one_authorization_relayed_twice_pays_once_and_then_nothing_is_payable(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil
) -> None:
    invoice = await open_invoice(api, "0.75")
    request = invoice["paymentRequest"]
    payer = anvil.accounts[PAYER]
    await usdc.mint(payer, 750_000, anvil.accounts[0])
    nonce, payer_before, used = await chain_state(usdc, anvil, request["referenceHash"])
    assert used is False
    payment = await signed(anvil, request)
    path = f"/api/v1/invoices/{invoice['id']}/pay"
    async with public(gateway_url) as client:
        first = await client.post(path, json=payment)
        again = await client.post(path, json=payment)
    assert (first.status_code, again.status_code) == (202, 202)
    settlement = first.json()
    assert again.json() == settlement
    assert (settlement["status"], settlement["origin"]) == ("PENDING", "RELAY")
    assert (settlement["invoiceId"], settlement["payerWalletAddress"]) == (invoice["id"], payer)
    assert (settlement["merchantWalletAddress"], settlement["amountDue"]) == (
        api.wallet,
        "0.750000",
    )
    assert await chain_state(usdc, anvil, request["referenceHash"]) == (
        nonce + 1,
        payer_before - 750_000,
        True,
    )
    assert await usdc.balance(api.wallet) == 750_000

    await settle(api.platform, usdc)
    paid = await ok(await api.get(f"/api/v1/invoices/{invoice['id']}"))
    assert (paid["status"], paid["settlementId"]) == ("PAID", settlement["id"])
    assert paid["paymentRequest"]["status"] == "PAID"
    assert paid["paymentRequest"]["settlementId"] == settlement["id"]
    confirmed = await ok(await api.get(f"/api/v1/settlements/{settlement['id']}"))
    assert (confirmed["status"], confirmed["amountPaid"]) == ("CONFIRMED", "0.750000")

    # Another payer's authorization of the paid request: nothing to pay, nothing sent.
    late_payer = await usdc.balance(anvil.accounts[4]) + 750_000
    await usdc.mint(anvil.accounts[4], 750_000, anvil.accounts[0])
    async with public(gateway_url) as client:
        late = await client.post(path, json=await signed(anvil, request, account=4))
        repeated = await client.post(path, json=payment)
    assert (late.status_code, late.json()["error"]["param"]) == (409, "invoiceId")
    assert late.json()["error"]["message"] == "the payment request is PAID: nothing to pay"
    assert repeated.json() == confirmed
    assert await relayer_nonce(usdc, anvil) == nonce + 1
    assert await usdc.balance(anvil.accounts[4]) == late_payer


async def test_a_nonce_used_on_chain_and_a_void_invoice_are_refused(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil
) -> None:
    invoice = await open_invoice(api, "0.2")
    request = invoice["paymentRequest"]
    held = await usdc.balance(anvil.accounts[PAYER])
    await usdc.mint(anvil.accounts[PAYER], 500_000, anvil.accounts[0])
    payment = await signed(anvil, request)
    # The payer's own wallet submitted it already (anyone may).
    await usdc.transfer_with_authorization(
        anvil.accounts[PAYER], payment["authorization"], payment["signature"]
    )
    voided = await open_invoice(api, "0.3")
    # The payer holds the amount: only the invoice's status stops the relay.
    before = await chain_state(usdc, anvil, voided["paymentRequest"]["referenceHash"])
    assert before[1] == held + 300_000
    await ok(await api.post(f"/api/v1/invoices/{voided['id']}/void", {}))
    await relay(api.platform)
    async with public(gateway_url) as client:
        used = await client.post(f"/api/v1/invoices/{invoice['id']}/pay", json=payment)
        void = await client.post(
            f"/api/v1/invoices/{voided['id']}/pay",
            json=await signed(anvil, voided["paymentRequest"]),
        )
    assert (used.status_code, used.json()["error"]["param"]) == (409, "authorization.nonce")
    assert used.json()["error"]["message"] == (
        "this authorization was already used or canceled on chain"
    )
    assert (void.status_code, void.json()["error"]["param"]) == (409, "invoiceId")
    assert void.json()["error"]["message"] == f"invoice {voided['id']} is VOID: nothing is owed"
    assert await chain_state(usdc, anvil, voided["paymentRequest"]["referenceHash"]) == before


async def test_a_checkout_fee_is_paid_through_its_relay(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil
) -> None:
    session = await open_session(
        api, "Inference API", "Pro", "FIXED_RECURRING", "4.5", "https://m.example/ok", "u_relay"
    )
    request = session["paymentRequest"]
    assert (request["checkoutSessionId"], request["invoiceId"]) == (session["id"], "")
    assert (request["amountBaseUnits"], request["payeeWalletAddress"]) == ("4500000", api.wallet)
    assert request["hostedUrl"] == f"http://127.0.0.1:8080/checkout/{session['id']}"
    assert (await ok(await api.get(f"/api/v1/checkout-sessions/{session['id']}")))[
        "paymentRequest"
    ] == request
    payer = anvil.accounts[PAYER]
    await usdc.mint(payer, 4_500_000, anvil.accounts[0])
    payer_before = await usdc.balance(payer)
    async with public(gateway_url) as client:
        answer = await client.post(
            f"/api/v1/checkout-sessions/{session['id']}/pay", json=await signed(anvil, request)
        )
        unknown = await client.post(
            "/api/v1/checkout-sessions/cs_nobody/pay", json=await signed(anvil, request)
        )
    assert answer.status_code == 202, answer.text
    settlement = answer.json()
    assert (settlement["checkoutSessionId"], settlement["origin"]) == (session["id"], "RELAY")
    assert unknown.status_code == 404
    waiting = await ok(await api.get(f"/api/v1/checkout-sessions/{session['id']}"))
    assert waiting["status"] == "AWAITING_PAYMENT"
    assert waiting["payment"] == {
        "transactionHash": settlement["transactionHash"],
        "payerWalletAddress": payer,
    }
    await settle(api.platform, usdc)
    done = await ok(await api.get(f"/api/v1/checkout-sessions/{session['id']}"))
    assert done["status"] == "COMPLETE"
    subscription = await ok(await api.get(f"/api/v1/subscriptions/{done['subscriptionId']}"))
    assert (subscription["status"], subscription["userId"]) == ("ACTIVE", "u_relay")
    assert await usdc.balance(payer) == payer_before - 4_500_000
    assert await usdc.balance(api.wallet) == 4_500_000
    # A usage-only plan has nothing to pay up front.
    _, plan = await usage_plan(api)
    free = await ok(
        await api.post(
            "/api/v1/checkout-sessions",
            {
                "planId": plan["id"],
                "successUrl": "https://m.example/ok",
                "cancelUrl": "https://m.example/no",
            },
        )
    )
    assert (free["amountDue"], free["paymentRequest"]) == ("0.000000", None)


async def test_the_public_endpoints_are_rate_limited_per_client_address(
    database_url: str, platform: Platform, api: Api, usdc: MockUsdc
) -> None:
    invoice = await open_invoice(api)
    settings = gateway_settings(
        database_url, platform, public_rate_limit_per_minute=1, public_rate_limit_burst=3
    )
    async with serving(settings, platform) as url, public(url) as client:
        answers = [
            await client.post(f"/api/v1/invoices/{invoice['id']}/pay", json={}),
            await client.get(f"/pay/{invoice['id']}/status"),
            await client.get(f"/pay/{invoice['id']}"),
            await client.post(f"/api/v1/invoices/{invoice['id']}/pay", json={}),
            await client.get(f"/pay/{invoice['id']}"),
        ]
        # A merchant's own API is limited by its key, not by the address.
        merchant = await client.get(
            f"/api/v1/invoices/{invoice['id']}", headers={"Authorization": f"Bearer {api.key}"}
        )
    assert [a.status_code for a in answers] == [400, 200, 200, 429, 429]
    limited = answers[3]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "60"
    assert limited.headers["RateLimit-Limit"] == "1"
    assert answers[0].headers["RateLimit-Remaining"] == "2"
    assert merchant.status_code == 200


async def test_an_x402_client_payload_is_taken_as_it_is(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil
) -> None:
    """The official x402 SDK's EVM client makes the body: the gateway takes its shape whole, and
    settlement judges it. The SDK picks a random nonce, not the request's reference, so this one
    is refused on that field alone and nothing is sent."""
    invoice = await open_invoice(api)
    request = invoice["paymentRequest"]
    requirements = PaymentRequirements(
        scheme="exact",
        network="eip155:31337",
        asset=request["tokenAddress"],
        amount=request["amountBaseUnits"],
        pay_to=request["payeeWalletAddress"],
        max_timeout_seconds=300,
        extra={"name": request["tokenName"], "version": request["tokenVersion"]},
    )
    client = ExactEvmScheme(Account.from_key(anvil.private_keys[PAYER]))
    payload = client.create_payment_payload(requirements)
    assert set(payload) == {"authorization", "signature"}
    nonce = await relayer_nonce(usdc, anvil)
    async with public(gateway_url) as http:
        answer = await http.post(f"/api/v1/invoices/{invoice['id']}/pay", json=payload)
    assert (answer.status_code, answer.json()["error"]["param"]) == (400, "authorization.nonce")
    assert await relayer_nonce(usdc, anvil) == nonce

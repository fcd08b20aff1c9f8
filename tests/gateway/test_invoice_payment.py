"""Paying an invoice without an API key: the public relay over REST, and the hosted invoice page
in real headless Chromium with an EIP-1193 wallet that forwards to anvil (anvil signs typed data
for its dev accounts)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page

from devstack import eip3009
from devstack.chain import Anvil, MockUsdc
from tests.conftest import RELAYER_ACCOUNT
from tests.gateway.conftest import Api
from tests.gateway.test_checkout_page import screenshot, settle
from tests.gateway.test_rest_api import relay, subscribe, usage_plan

PAYER = 3

# An EIP-1193 provider: every request goes to anvil's JSON-RPC, which holds the dev keys.
WALLET = """
window.ethereum = {
  isTestWallet: true,
  async request({method, params}) {
    if (method === "eth_requestAccounts") return [PAYER];
    if (REFUSE) { const e = new Error("User rejected the request."); e.code = 4001; throw e; }
    const answer = await fetch(ANVIL, {method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({jsonrpc: "2.0", id: 1, method, params: params || []})});
    const body = await answer.json();
    if (body.error) { const e = new Error(body.error.message); e.code = body.error.code; throw e; }
    return body.result;
  },
};
"""


def wallet(anvil: Anvil, *, refuse: bool = False) -> str:
    return (
        WALLET.replace("PAYER", json.dumps(anvil.accounts[PAYER]))
        .replace("REFUSE", json.dumps(refuse))
        .replace("ANVIL", json.dumps(anvil.url))
    )


async def open_invoice(api: Api, amount: str = "0.5") -> dict[str, Any]:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    body = {"subscriptionId": subscription["id"], "paymentPlanId": plan["id"], "amount": amount}
    created = await api.post("/api/v1/invoices", body)
    assert created.status_code == 200, created.text
    await relay(api.platform)  # the ledger records it: the public pages find its owner
    found: dict[str, Any] = (await api.get(f"/api/v1/invoices/{created.json()['id']}")).json()
    return found


async def sent_by_relayer(usdc: MockUsdc, anvil: Anvil) -> int:
    relayer = usdc.w3.to_checksum_address(anvil.accounts[RELAYER_ACCOUNT])
    return int(await usdc.w3.eth.get_transaction_count(relayer))


async def sign(anvil: Anvil, request: dict[str, Any], **overrides: str) -> dict[str, Any]:
    """The payer's wallet signs the authorization, as the page asks it to."""
    authorization = {
        "from": anvil.accounts[PAYER],
        "to": request["payeeWalletAddress"],
        "value": request["amountBaseUnits"],
        "validAfter": "0",
        "validBefore": str(_unix(request["expireTime"])),
        "nonce": request["referenceHash"],
    }
    authorization.update(overrides)
    typed = eip3009.typed_data(
        request["tokenName"],
        request["tokenVersion"],
        int(request["chainId"]),
        request["tokenAddress"],
        authorization,
    )
    async with httpx.AsyncClient(trust_env=False) as client:
        answer = await client.post(
            anvil.url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_signTypedData_v4",
                "params": [anvil.accounts[PAYER], json.dumps(typed)],
            },
        )
    return {"authorization": authorization, "signature": answer.json()["result"]}


def _unix(moment: str) -> int:
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp())


async def test_the_invoice_carries_its_payment_request(api: Api, usdc: MockUsdc) -> None:
    invoice = await open_invoice(api)
    request = invoice["paymentRequest"]
    assert request["invoiceId"] == invoice["id"]
    assert (request["amount"], request["amountBaseUnits"]) == ("0.500000", "500000")
    assert (request["payeeWalletAddress"], request["tokenAddress"]) == (api.wallet, usdc.address)
    assert (request["chainId"], request["status"]) == ("31337", "OPEN")
    assert request["hostedUrl"] == f"http://127.0.0.1:8080/pay/{invoice['id']}"
    assert request["uri"] == (
        f"ethereum:{usdc.address}@31337/transfer?address={api.wallet}&uint256=500000"
    )


async def test_the_public_relay_pays_and_refuses_precisely(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil
) -> None:
    invoice = await open_invoice(api)
    request = invoice["paymentRequest"]
    await usdc.mint(anvil.accounts[PAYER], 500_000, anvil.accounts[0])
    sent_before = await sent_by_relayer(usdc, anvil)
    path = f"/api/v1/invoices/{invoice['id']}/pay"
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False) as public:
        short = await public.post(path, json=await sign(anvil, request, value="400000"))
        assert short.status_code == 400
        assert short.json()["error"]["param"] == "authorization.value"
        extra = await sign(anvil, request)
        extra["authorization"]["memo"] = "x"
        refused = await public.post(path, json=extra)
        assert (refused.status_code, refused.json()["error"]["param"]) == (400, "authorization")
        unknown = await public.post(
            "/api/v1/invoices/in_nobody/pay", json=await sign(anvil, request)
        )
        assert unknown.status_code == 404
        assert await sent_by_relayer(usdc, anvil) == sent_before
        signed = await sign(anvil, request)
        first = await public.post(path, json=signed)
        again = await public.post(path, json=signed)
    assert first.status_code == 202, first.text
    assert again.json()["id"] == first.json()["id"]
    assert (first.json()["status"], first.json()["origin"]) == ("PENDING", "RELAY")
    assert await sent_by_relayer(usdc, anvil) == sent_before + 1
    assert await usdc.balance(api.wallet) == 500_000
    await settle(api.platform, usdc)
    paid = (await api.get(f"/api/v1/invoices/{invoice['id']}")).json()
    assert paid["status"] == "PAID"
    assert paid["paymentRequest"]["status"] == "PAID"


async def test_the_hosted_page_pays_with_the_wallet_and_shows_the_receipt(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil, page: Page, artifacts: Path
) -> None:
    invoice = await open_invoice(api, "1.25")
    await usdc.mint(anvil.accounts[PAYER], 1_250_000, anvil.accounts[0])
    payer_before = await usdc.balance(anvil.accounts[PAYER])
    await page.add_init_script(wallet(anvil))
    await page.goto(f"{gateway_url}/pay/{invoice['id']}")
    assert await page.text_content("#amount") == "1.250000 USDC"
    assert await page.text_content("#status") == "OPEN"
    assert await page.text_content("#payee") == api.wallet
    assert await page.locator("#qr svg").count() == 1
    await screenshot(page, artifacts / "invoice-page.png")
    await page.click("#pay-with-wallet")
    await page.wait_for_function(
        "document.getElementById('message').textContent.includes('confirming')"
        " || document.getElementById('message').textContent.includes('Confirming')"
    )
    assert await usdc.balance(anvil.accounts[PAYER]) == payer_before - 1_250_000
    await settle(api.platform, usdc)
    await page.wait_for_selector("#receipt:not([hidden])")
    assert await page.text_content("#status") == "PAID"
    transaction = await page.text_content("#receipt-transaction")
    assert transaction is not None and transaction.startswith("0x") and len(transaction) == 66
    await screenshot(page, artifacts / "invoice-paid.png")
    assert await usdc.balance(api.wallet) == 1_250_000


async def test_a_wallet_that_refuses_is_told_clearly_and_nothing_is_sent(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil, page: Page
) -> None:
    invoice = await open_invoice(api)
    sent_before = await sent_by_relayer(usdc, anvil)
    await page.add_init_script(wallet(anvil, refuse=True))
    await page.goto(f"{gateway_url}/pay/{invoice['id']}")
    await page.click("#pay-with-wallet")
    await page.wait_for_selector("#message.error")
    assert await page.text_content("#message") == (
        "You declined the payment in your wallet; nothing was sent."
    )
    assert await sent_by_relayer(usdc, anvil) == sent_before
    assert await page.text_content("#status") == "OPEN"

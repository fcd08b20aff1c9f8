"""The hosted invoice page in real headless Chromium, against the real gateway, services and anvil.
The subscriber's wallet is an EIP-1193 provider forwarding to anvil (tests/gateway/wallet.py):
it signs, the public relay sends, the page follows the payment to its receipt. Every page runs
under its Content-Security-Policy, and nothing it does may break it or throw."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
import pytest
from markupsafe import escape
from playwright.async_api import ConsoleMessage, Dialog, Page

from devstack.chain import Anvil, MockUsdc
from tests.gateway.conftest import Api
from tests.gateway.test_checkout_page import ok, screenshot, settle
from tests.gateway.test_invoice_relay import chain_state, open_invoice
from tests.gateway.test_rest_api import relay
from tests.gateway.wallet import PAYER, inject_wallet

POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DECLINED = "You declined in your wallet: nothing was signed and nothing was sent."


def problems_of(page: Page) -> list[str]:
    """What the page logs as an error (a refused script or style, a failed load) or throws."""
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


async def test_the_wallet_pays_and_the_page_follows_the_payment_to_its_receipt(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil, page: Page, artifacts: Path
) -> None:
    invoice = await open_invoice(api, "1.25")
    payer = anvil.accounts[PAYER]
    await usdc.mint(payer, 1_250_000, anvil.accounts[0])
    payer_before = await usdc.balance(payer)
    wallet = await inject_wallet(page, anvil)
    problems = problems_of(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    url = f"{gateway_url}/pay/{invoice['id']}"

    shown = await page.goto(url)
    assert shown is not None
    assert shown.headers["content-security-policy"] == POLICY
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert await page.title() == f"Invoice from Merchant {api.merchant_id}"
    assert await page.text_content("#merchant") == f"Merchant {api.merchant_id}"
    assert await page.text_content("#amount") == "1.250000 USDC"
    assert await page.text_content("#due") == invoice["dueTime"][:10]
    assert await page.locator("#lines td.amount").all_text_contents() == ["1.250000 USDC"]
    assert await page.text_content("#status") == "OPEN"
    assert await page.text_content("#payee") == api.wallet
    assert await page.locator("#qr svg.segno").count() == 1
    assert await page.locator("#receipt").is_hidden()
    await screenshot(page, artifacts / "invoice-page.png")

    await page.click("#pay-with-wallet")
    # A locator, not wait_for_function: the page's policy forbids evaluating strings.
    await page.locator("#wallet-message", has_text="confirming on chain").wait_for()
    assert wallet.asked == ["eth_requestAccounts", "eth_signTypedData_v4"]
    assert await usdc.balance(payer) == payer_before - 1_250_000
    assert await usdc.balance(api.wallet) == 1_250_000
    # Reloaded while the payment confirms, the page says so and follows it by itself (the
    # receipt below shows up in the reloaded page).
    async with httpx.AsyncClient(trust_env=False) as client:
        html = (await client.get(url)).text
    assert '<p id="wallet-message" role="status">A payment is confirming on chain&hellip;' in html
    await page.reload()
    await page.locator("#wallet-message", has_text="(0 confirmations)").wait_for()
    assert await page.locator("#pay-with-wallet").is_disabled()

    await settle(api.platform, usdc)
    await page.wait_for_selector("#receipt:not([hidden])")
    paid = await ok(await api.get(f"/api/v1/invoices/{invoice['id']}"))
    settlement = await ok(await api.get(f"/api/v1/settlements/{paid['settlementId']}"))
    assert (paid["status"], settlement["status"], settlement["origin"]) == (
        "PAID",
        "CONFIRMED",
        "RELAY",
    )
    assert await page.text_content("#status") == "PAID"
    assert await page.text_content("#receipt-amount") == "1.250000 USDC"
    assert await page.text_content("#receipt-transaction") == settlement["transactionHash"]
    assert await page.text_content("#receipt-block") == settlement["blockNumber"]
    assert await page.locator("#pay").is_hidden()
    await screenshot(page, artifacts / "invoice-paid.png")
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False) as client:
        status = (await client.get(f"/pay/{invoice['id']}/status")).json()
    assert status == {
        "status": "PAID",
        "settlement": {
            "id": settlement["id"],
            "status": "CONFIRMED",
            "transactionHash": settlement["transactionHash"],
            "blockNumber": settlement["blockNumber"],
            "confirmations": "3",
            "amountPaid": "1.250000",
        },
    }

    # A PAID invoice's page is its receipt, with nothing left to pay.
    await page.goto(url)
    assert await page.text_content("#status") == "PAID"
    assert await page.text_content("#receipt-transaction") == settlement["transactionHash"]
    assert await page.locator("#receipt").is_visible()
    assert await page.locator("#pay-with-wallet").count() == 0
    assert wallet.asked == ["eth_requestAccounts", "eth_signTypedData_v4"]
    assert problems == []
    assert requested and all(u.startswith(gateway_url) for u in requested), requested


@pytest.mark.parametrize("refused", ["eth_requestAccounts", "eth_signTypedData_v4"])
async def test_a_wallet_that_refuses_is_told_clearly_and_nothing_is_sent(
    refused: str, api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil, page: Page
) -> None:
    invoice = await open_invoice(api)
    await usdc.mint(anvil.accounts[PAYER], 500_000, anvil.accounts[0])
    reference = invoice["paymentRequest"]["referenceHash"]
    before = await chain_state(usdc, anvil, reference)
    wallet = await inject_wallet(page, anvil, refuse=refused)
    problems = problems_of(page)
    await page.goto(f"{gateway_url}/pay/{invoice['id']}")
    await page.click("#pay-with-wallet")
    await page.wait_for_selector("#wallet-message.error")
    assert await page.text_content("#wallet-message") == DECLINED
    asked = ["eth_requestAccounts", "eth_signTypedData_v4"]
    assert wallet.asked == asked[: asked.index(refused) + 1]
    assert await page.locator("#pay-with-wallet").is_enabled()
    assert await page.text_content("#status") == "OPEN"
    assert await chain_state(usdc, anvil, reference) == before
    listed = await ok(await api.get("/api/v1/settlements", invoiceId=invoice["id"]))
    assert listed["data"] == []
    assert problems == []


async def test_without_a_wallet_the_page_says_so(
    api: Api, gateway_url: str, usdc: MockUsdc, anvil: Anvil, page: Page
) -> None:
    invoice = await open_invoice(api)
    before = await chain_state(usdc, anvil, invoice["paymentRequest"]["referenceHash"])
    await page.goto(f"{gateway_url}/pay/{invoice['id']}")
    await page.click("#pay-with-wallet")
    await page.wait_for_selector("#wallet-message.error")
    assert await page.text_content("#wallet-message") == (
        "No wallet found in this browser: install a browser wallet, or pay by transfer with the "
        "QR code."
    )
    assert await chain_state(usdc, anvil, invoice["paymentRequest"]["referenceHash"]) == before


async def test_a_void_invoice_says_nothing_is_owed_and_offers_no_payment(
    api: Api, gateway_url: str, page: Page
) -> None:
    invoice = await open_invoice(api)
    await ok(await api.post(f"/api/v1/invoices/{invoice['id']}/void", {}))
    await relay(api.platform)
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False) as client:
        html = (await client.get(f"/pay/{invoice['id']}")).text
        unknown = await client.get("/pay/in_nobody")
        unknown_status = await client.get("/pay/in_nobody/status")
    assert "<script" not in html
    await page.goto(f"{gateway_url}/pay/{invoice['id']}")
    assert await page.text_content("#status") == "VOID"
    assert await page.text_content("#void") == "This invoice was voided: nothing is owed."
    assert await page.locator("#pay-with-wallet, #qr").count() == 0
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    assert unknown_status.status_code == 404


MERCHANT = '<img src=x onerror=alert(1)> & "Co" </script><script>alert(2)</script>'


async def test_the_merchant_name_is_shown_literally_never_run(
    api: Api, gateway_url: str, page: Page, db: asyncpg.Connection
) -> None:
    await db.execute(
        "UPDATE gateway.merchants SET name = $1 WHERE id = $2", MERCHANT, api.merchant_id
    )
    invoice = await open_invoice(api)
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False) as client:
        html = (await client.get(f"/pay/{invoice['id']}")).text
    assert escape(MERCHANT) in html
    assert MERCHANT not in html
    # Ours only: the payment request as JSON and the wallet script.
    assert html.count("<script") == 2
    dialogs: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    await page.goto(f"{gateway_url}/pay/{invoice['id']}")
    assert await page.text_content("#merchant") == MERCHANT
    assert await page.title() == f"Invoice from {MERCHANT}"
    assert await page.locator("img, script:not([src]):not([type='application/json'])").count() == 0
    assert dialogs == []

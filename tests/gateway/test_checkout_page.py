"""The hosted checkout page in real headless Chromium, against the real gateway and services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from markupsafe import escape
from playwright.async_api import Dialog, Page

import invoicing_svc.service_layer.relay
from devstack.chain import Anvil, MockUsdc
from settlement_svc.service_layer.relay import outbox_relay
from settlement_svc.service_layer.verification import verify_pending
from tests.conftest import CONFIRMATIONS, Platform
from tests.gateway.browser import THANKS, thanks_server
from tests.gateway.conftest import Api
from tests.gateway.wallet import PAYER, inject_wallet


@pytest.fixture(scope="session")
def thanks_url() -> Iterator[str]:
    with thanks_server() as url:
        yield url


async def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def open_session(
    api: Api,
    service: str,
    plan: str,
    pricing_type: str,
    amount: str,
    success_url: str,
    user_id: str,
) -> dict[str, Any]:
    """A service with one monthly plan, and a checkout session for it."""
    created = await ok(await api.post("/api/v1/services", {"name": service}))
    body = {"name": plan, "pricingType": pricing_type, "billingInterval": "MONTH", "amount": amount}
    found = await ok(await api.post(f"/api/v1/services/{created['id']}/plans", body))
    session = {
        "planId": found["id"],
        "userId": user_id,
        "successUrl": success_url,
        "cancelUrl": "http://127.0.0.1:9/cancelled",
    }
    return await ok(await api.post("/api/v1/checkout-sessions", session))


def png_size(path: Path) -> int:
    """The size of the PNG file at `path` (0 unless it is one)."""
    data = path.read_bytes() if path.is_file() else b""
    return len(data) if data.startswith(b"\x89PNG\r\n\x1a\n") else 0


async def screenshot(page: Page, path: Path) -> None:
    """A full-page screenshot kept as a test artifact."""
    await page.screenshot(path=str(path), full_page=True)
    assert png_size(path) > 1000


async def settle(platform: Platform, usdc: MockUsdc) -> None:
    """Confirmations on chain, a verifier pass, and both outboxes relayed."""
    await usdc.mine(CONFIRMATIONS)
    await verify_pending(platform.settlements)
    settlement_relay = outbox_relay(platform.settlements)
    while await settlement_relay.relay_once():
        pass
    invoicing_relay = invoicing_svc.service_layer.relay.outbox_relay(platform.invoicing)
    while await invoicing_relay.relay_once():
        pass


async def test_a_usage_plan_starts_with_one_click(
    api: Api, gateway_url: str, page: Page, thanks_url: str, artifacts: Path
) -> None:
    success_url = f"{thanks_url}/welcome?plan=usage"
    session = await open_session(
        api, "Vector search", "Pay as you go", "USAGE_BASED", "0.000010", success_url, "u_usage"
    )
    assert (session["status"], session["amountDue"]) == ("OPEN", "0.000000")

    await page.goto(f"{gateway_url}/checkout/{session['id']}")
    assert await page.title() == "Subscribe to Vector search"
    assert await page.locator("p.muted").first.inner_text() == f"Merchant {api.merchant_id}"
    assert await page.locator("h1").inner_text() == "Vector search"
    assert await page.locator("h1 + p").inner_text() == "Pay as you go"
    assert await page.locator("#price").inner_text() == "0.00001 USDC per unit, billed each month"
    assert await page.locator("#amount").count() == 0
    assert await page.locator("#start").inner_text() == "Start subscription"
    shot = artifacts / "checkout-usage.png"
    await screenshot(page, shot)

    await page.locator("#start").click()
    await page.wait_for_url(success_url)
    assert page.url == success_url
    assert await page.locator("body").inner_text() == THANKS

    done = await ok(await api.get(f"/api/v1/checkout-sessions/{session['id']}"))
    assert done["status"] == "COMPLETE"
    assert done["subscriptionId"].startswith("sub_")
    subscription = await ok(await api.get(f"/api/v1/subscriptions/{done['subscriptionId']}"))
    assert (subscription["status"], subscription["userId"]) == ("ACTIVE", "u_usage")


async def test_a_fixed_fee_is_paid_in_usdc_and_verified_on_chain(
    api: Api,
    gateway_url: str,
    page: Page,
    thanks_url: str,
    artifacts: Path,
    anvil: Anvil,
    usdc: MockUsdc,
) -> None:
    success_url = f"{thanks_url}/welcome?plan=fixed"
    session = await open_session(
        api, "Inference API", "Pro", "FIXED_RECURRING", "9.99", success_url, "u_fixed"
    )
    assert (session["status"], session["amountDue"]) == ("OPEN", "9.990000")
    checkout_url = f"{gateway_url}/checkout/{session['id']}"
    wallet, payer, minter = api.wallet, anvil.accounts[1], anvil.accounts[0]

    await page.goto(checkout_url)
    assert await page.locator("#price").inner_text() == "9.99 USDC per month"
    assert await page.locator("#amount").inner_text() == "9.990000 USDC"
    assert await page.locator("#merchant-wallet").inner_text() == wallet
    assert await page.locator("#start").count() == 0

    await usdc.mint(payer, 9_990_000, minter)
    transaction_hash = await usdc.transfer(payer, wallet, 9_990_000)
    await page.locator("#payer").fill(payer)
    await page.locator("#tx").fill(transaction_hash)
    # The form posts to the page, which answers 303 back to itself: now waiting.
    async with page.expect_navigation(url=checkout_url):
        await page.get_by_role("button", name="I have paid").click()
    assert await page.locator("#waiting").inner_text() == (
        "Verifying your payment on chain\u2026 this page refreshes by itself."
    )
    assert await page.locator("#amount").count() == 0
    assert await page.locator("[role=alert]").count() == 0
    await screenshot(page, artifacts / "checkout-waiting.png")
    waiting = await ok(await api.get(f"/api/v1/checkout-sessions/{session['id']}"))
    assert waiting["status"] == "AWAITING_PAYMENT"

    await settle(api.platform, usdc)

    # The page refreshes itself every 2 seconds; once the session is complete it offers auto-pay
    # (the plan's fee is a cap to propose) and a link on to successUrl.
    await page.locator("#continue").click()
    await page.wait_for_url(success_url)
    assert await page.locator("body").inner_text() == THANKS
    done = await ok(await api.get(f"/api/v1/checkout-sessions/{session['id']}"))
    assert done["status"] == "COMPLETE"
    subscription = await ok(await api.get(f"/api/v1/subscriptions/{done['subscriptionId']}"))
    assert (subscription["status"], subscription["userId"]) == ("ACTIVE", "u_fixed")
    # The customer's wallet is the one it paid from.
    customer = await ok(await api.get("/api/v1/customers/u_fixed"))
    assert customer["walletAddress"].lower() == payer.lower()


async def test_a_fixed_fee_is_paid_with_the_wallet_next_to_the_manual_form(
    api: Api,
    gateway_url: str,
    page: Page,
    thanks_url: str,
    artifacts: Path,
    anvil: Anvil,
    usdc: MockUsdc,
) -> None:
    success_url = f"{thanks_url}/welcome?plan=wallet"
    session = await open_session(
        api, "Inference API", "Team", "FIXED_RECURRING", "7.5", success_url, "u_wallet"
    )
    checkout_url = f"{gateway_url}/checkout/{session['id']}"
    payer = anvil.accounts[PAYER]
    await usdc.mint(payer, 7_500_000, anvil.accounts[0])
    payer_before = await usdc.balance(payer)
    wallet = await inject_wallet(page, anvil)
    shown = await page.goto(checkout_url)
    assert shown is not None
    assert shown.headers["content-security-policy"].startswith("default-src 'none';")
    assert await page.locator("#amount").inner_text() == "7.500000 USDC"
    assert await page.locator("#merchant-wallet").inner_text() == api.wallet
    # The manual form stays, for wallets that cannot sign typed data.
    assert await page.locator("#pay-with-wallet, #qr svg.segno, #payer, #tx").count() == 4
    await screenshot(page, artifacts / "checkout-wallet.png")

    # The relay makes the session wait for the payment; the page reloads to show it.
    async with page.expect_navigation(url=checkout_url):
        await page.click("#pay-with-wallet")
    assert await page.locator("#waiting").inner_text() == (
        "Verifying your payment on chain\u2026 this page refreshes by itself."
    )
    assert wallet.asked == ["eth_requestAccounts", "eth_signTypedData_v4"]
    waiting = await ok(await api.get(f"/api/v1/checkout-sessions/{session['id']}"))
    assert (waiting["status"], waiting["payment"]["payerWalletAddress"]) == (
        "AWAITING_PAYMENT",
        payer,
    )
    assert await usdc.balance(payer) == payer_before - 7_500_000
    assert await usdc.balance(api.wallet) == 7_500_000

    await settle(api.platform, usdc)
    await page.locator("#continue").click()
    await page.wait_for_url(success_url)
    done = await ok(await api.get(f"/api/v1/checkout-sessions/{session['id']}"))
    assert done["status"] == "COMPLETE"
    subscription = await ok(await api.get(f"/api/v1/subscriptions/{done['subscriptionId']}"))
    assert (subscription["status"], subscription["userId"]) == ("ACTIVE", "u_wallet")
    customer = await ok(await api.get("/api/v1/customers/u_wallet"))
    assert customer["walletAddress"] == payer
    [settlement] = (await ok(await api.get("/api/v1/settlements")))["data"]
    assert (settlement["checkoutSessionId"], settlement["status"], settlement["origin"]) == (
        session["id"],
        "CONFIRMED",
        "RELAY",
    )
    assert settlement["transactionHash"] == done["payment"]["transactionHash"]


# What a merchant controls and the page shows, each an attempt to run or inject markup.
MERCHANT = "<i>Evil</i> & Co"
SERVICE = "<script>alert(1)</script>"
PLAN = "<img src=x onerror=alert(2)>"
CANCEL_URL = 'https://m.example/no?q="><script>alert(3)</script>'
# Any element of theirs: our two scripts (the wallet's config and code) aside.
INJECTED = "script:not(#wallet-config):not([src='/static/wallet.js']), img, i, [onerror]"


async def test_every_merchant_text_is_shown_literally_never_run_as_html(
    api: Api, gateway_url: str, page: Page, thanks_url: str, db: asyncpg.Connection
) -> None:
    await db.execute(
        "UPDATE gateway.merchants SET name = $1 WHERE id = $2", MERCHANT, api.merchant_id
    )
    service = await ok(await api.post("/api/v1/services", {"name": SERVICE}))
    charge = {"eventKey": "tokens", "model": "PER_UNIT", "unitPrice": "0.5"}
    plan = await ok(
        await api.post(
            f"/api/v1/services/{service['id']}/plans",
            {
                "name": PLAN,
                "pricingType": "HYBRID",
                "billingInterval": "MONTH",
                "amount": "2",
                "charges": [charge],
            },
        )
    )
    session = await ok(
        await api.post(
            "/api/v1/checkout-sessions",
            {"planId": plan["id"], "successUrl": f"{thanks_url}/x", "cancelUrl": CANCEL_URL},
        )
    )
    url = f"{gateway_url}/checkout/{session['id']}"

    # The HTML as sent: every one of them escaped, none as markup.
    async with httpx.AsyncClient(trust_env=False) as client:
        html = (await client.get(url)).text
    for text in (MERCHANT, SERVICE, PLAN):
        assert escape(text) in html, text
        assert text not in html, text
    assert f'href="{escape(CANCEL_URL)}"' in html
    # Ours only: the payment request as JSON and the wallet script.
    assert html.count("<script") == 2
    assert '<script src="/static/wallet.js"></script>' in html

    dialogs: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    await page.goto(url)
    assert dialogs == []
    assert await page.locator(INJECTED).count() == 0
    assert await page.title() == f"Subscribe to {SERVICE}"
    assert await page.locator("p.muted").first.inner_text() == MERCHANT
    assert await page.locator("h1").inner_text() == SERVICE
    assert await page.locator("h1 + p").inner_text() == PLAN
    assert await page.locator("#price").inner_text() == "2 USDC per month plus usage"
    assert await page.locator("#price + p").inner_text() == "tokens: per unit, 0.5 USDC"
    assert await page.locator("#amount").inner_text() == "2.000000 USDC"
    assert await page.get_by_role("link", name="Cancel").get_attribute("href") == CANCEL_URL


async def test_an_unknown_session_is_404(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False) as client:
        response = await client.get("/checkout/cs_doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"

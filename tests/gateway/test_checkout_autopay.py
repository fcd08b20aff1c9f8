""" "Pay automatically" on the hosted checkout page in real headless Chromium: the injected wallet
signs the permit and the mandate, the platform relays both, the page follows the mandate to
ACTIVE; checked on chain and over REST. A wallet refusing to sign leaves nothing anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Page

from devstack.chain import Anvil, MockUsdc
from devstack.mandates import Mandates
from tests.gateway.browser import THANKS, thanks_server
from tests.gateway.conftest import Api
from tests.gateway.test_checkout_page import screenshot
from tests.gateway.test_mandate_enrolment import (
    ALLOWANCE,
    CAP,
    LIFETIME,
    PERIOD,
    collector_nonce,
    follow,
    mandate_rows,
    open_session,
    usage_plan,
)
from tests.gateway.wallet import PAYER, inject_wallet

# What the page asks the wallet, in order: connect, its chain, the chain's time, the token's
# permit nonce, the permit, the contract's nonce, the mandate.
ASKED = [
    "eth_requestAccounts",
    "eth_chainId",
    "eth_getBlockByNumber",
    "eth_call",
    "eth_signTypedData_v4",
    "eth_call",
    "eth_signTypedData_v4",
]


@pytest.fixture(scope="module")
def thanks_url() -> Iterator[str]:
    with thanks_server() as url:
        yield url


async def started(api: Api, page: Page, gateway_url: str, thanks_url: str, user: str) -> str:
    """A usage plan with a 5 USDC ceiling, subscribed to on its checkout page ("Start
    subscription"), which then offers auto-pay; answers the session id."""
    plan = await usage_plan(api)
    session = await open_session(api, plan, user, f"{thanks_url}/welcome?plan=autopay")
    session_id: str = session["id"]
    url = f"{gateway_url}/checkout/{session_id}"
    await page.goto(url)
    async with page.expect_navigation(url=url):
        await page.locator("#start").click()
    return session_id


async def subscription_of(api: Api, session_id: str) -> str:
    found = (await api.get(f"/api/v1/checkout-sessions/{session_id}")).json()
    subscription: str = found["subscriptionId"]
    return subscription


async def test_a_subscriber_turns_on_auto_pay_from_the_checkout_page(
    api: Api,
    gateway_url: str,
    page: Page,
    thanks_url: str,
    artifacts: Path,
    anvil: Anvil,
    usdc: MockUsdc,
    mandates: Mandates,
) -> None:
    wallet = await inject_wallet(page, anvil)
    session_id = await started(api, page, gateway_url, thanks_url, "u_autopay")
    subscription_id = await subscription_of(api, session_id)
    completed = (await api.get(f"/api/v1/checkout-sessions/{session_id}")).json()["completeTime"]
    expiry = int(datetime.fromisoformat(completed).timestamp()) + LIFETIME
    until = datetime.fromtimestamp(expiry, UTC)

    assert await page.locator("#subscribed").inner_text() == "You are subscribed."
    assert await page.locator("#autopay-terms").inner_text() == (
        f"Let Merchant {api.merchant_id} collect each invoice from your wallet: up to 5 USDC"
        f" every 28 days, until {until:%-d %B %Y, %H:%M} UTC, paid only to"
    )
    assert await page.locator("#autopay-wallet").inner_text() == api.wallet
    assert await page.locator("#autopay-permit").inner_text() == (
        "Your wallet signs twice and pays no gas: a permit letting the mandate contract move up"
        " to 70 USDC in all (the cap of 14 periods), then the mandate. You can revoke it on chain"
        " at any time."
    )
    assert await page.locator("#autopay-status").inner_text() == "none yet"
    await screenshot(page, artifacts / "checkout-autopay.png")

    before = await collector_nonce(usdc, anvil)
    await page.click("#pay-automatically")
    await page.locator("#pay-automatically").wait_for(state="hidden")
    assert await page.locator("#autopay-status").inner_text() == "PENDING"
    assert wallet.asked == ASKED
    # The permit and the mandate, both relayed by the collector.
    assert await collector_nonce(usdc, anvil) == before + 2
    pending = (await api.get(f"/api/v1/subscriptions/{subscription_id}/mandate")).json()
    assert pending["status"] == "PENDING"

    await follow(api, usdc)
    # The page polls the public view until the chain holds the mandate.
    await page.locator("#autopay-status:text-is('ACTIVE')").wait_for()
    assert await page.locator("#autopay-message").inner_text() == "Auto-pay is on."
    await screenshot(page, artifacts / "checkout-autopay-active.png")

    payer = anvil.accounts[PAYER]
    state = await mandates.mandate(payer, api.wallet)
    assert (state.cap, state.period, state.expiry, state.revoked) == (CAP, PERIOD, expiry, False)
    allowance = await usdc.contract.functions.allowance(payer, mandates.address).call()
    assert allowance == ALLOWANCE
    mandate = (await api.get(f"/api/v1/subscriptions/{subscription_id}/mandate")).json()
    assert mandate == {
        **pending,
        "status": "ACTIVE",
    }
    assert (
        mandate["payerWalletAddress"],
        mandate["merchantWalletAddress"],
        mandate["contractAddress"],
        mandate["capBaseUnits"],
        mandate["periodSeconds"],
        int(datetime.fromisoformat(mandate["expireTime"]).timestamp()),
    ) == (payer, api.wallet, mandates.address, str(CAP), str(PERIOD), expiry)

    # Shown again, the page knows the mandate and offers no second one.
    await page.reload()
    assert await page.locator("#autopay-status").inner_text() == "ACTIVE"
    assert await page.locator("#pay-automatically").is_hidden()
    await page.locator("#continue").click()
    await page.wait_for_url(f"{thanks_url}/welcome?plan=autopay")
    assert await page.locator("body").inner_text() == THANKS


async def test_a_wallet_that_refuses_to_sign_leaves_nothing_relayed(
    api: Api,
    gateway_url: str,
    page: Page,
    thanks_url: str,
    anvil: Anvil,
    usdc: MockUsdc,
    mandates: Mandates,
    db: asyncpg.Connection,
) -> None:
    wallet = await inject_wallet(page, anvil, refuse="eth_signTypedData_v4")
    session_id = await started(api, page, gateway_url, thanks_url, "u_autopay_no")
    subscription_id = await subscription_of(api, session_id)
    before = await collector_nonce(usdc, anvil)
    state_before = await mandates.mandate(anvil.accounts[PAYER], api.wallet)

    await page.click("#pay-automatically")
    message = page.locator("#autopay-message.error")
    await message.wait_for()
    assert await message.inner_text() == (
        "You declined the permit: nothing was signed and nothing was sent."
    )
    assert wallet.asked == ASKED[:5]
    assert await page.locator("#pay-automatically").is_enabled()
    assert await page.locator("#autopay-status").inner_text() == "none yet"
    assert await collector_nonce(usdc, anvil) == before
    assert await mandates.mandate(anvil.accounts[PAYER], api.wallet) == state_before
    missing = await api.get(f"/api/v1/subscriptions/{subscription_id}/mandate")
    assert missing.status_code == 404
    assert await mandate_rows(db, subscription_id) == 0

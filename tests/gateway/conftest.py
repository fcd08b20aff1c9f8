"""The REST gateway on a real HTTP port (uvicorn) in front of the real services."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from devstack.postgres import free_port
from gateway.app import create_app
from gateway.merchants import create_api_key, create_merchant
from gateway.settings import GatewaySettings
from service_kit.clock import Clock
from service_kit.database import create_engine, session_factory
from tests.conftest import SECRETS_KEY, SERVICE_TOKEN, Platform, register_payout_wallet
from tests.gateway.browser import CHROMIUM, CHROMIUM_ARGS

_merchants = itertools.count(1)


@asynccontextmanager
async def serving(
    settings: GatewaySettings, platform: Platform, clock: Clock | None = None
) -> AsyncIterator[str]:
    """The gateway app under uvicorn on a free loopback port (on the platform's clock unless
    given another); yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, clock=clock or platform.clock),
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise RuntimeError("the gateway did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def gateway_settings(database_url: str, platform: Platform, **overrides: object) -> GatewaySettings:
    metering, invoicing, settlement = platform.addresses
    values: dict[str, object] = {
        "database_url": database_url,
        "metering_address": metering,
        "invoicing_address": invoicing,
        "settlement_address": settlement,
        "service_token": SERVICE_TOKEN,
        "secrets_key": SECRETS_KEY,
    }
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def gateway_url(database_url: str, platform: Platform) -> AsyncIterator[str]:
    # Every test's public requests (pages, relays) come from 127.0.0.1: one address's budget
    # is not the tests' (test_invoice_relay.py checks the limit on a gateway of its own).
    settings = gateway_settings(
        database_url,
        platform,
        public_rate_limit_per_minute=1_000_000,
        public_rate_limit_burst=1_000_000,
    )
    async with serving(settings, platform) as url:
        yield url


async def new_merchant(database_url: str, platform: Platform) -> tuple[str, str, str]:
    """A merchant, its API key and its payout wallet, as `python -m gateway create-key
    --wallet` makes them."""
    merchant_id = f"mer_rest{next(_merchants)}"
    wallet = await register_payout_wallet(platform, merchant_id)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with session_factory(engine)() as session, session.begin():
            now = datetime.now(UTC)
            await create_merchant(session, f"Merchant {merchant_id}", now, merchant_id)
            return merchant_id, await create_api_key(session, merchant_id, now), wallet
    finally:
        await engine.dispose()


@dataclass
class Api:
    """An HTTP client authenticated as one merchant."""

    client: httpx.AsyncClient
    merchant_id: str
    key: str
    platform: Platform
    # The merchant's payout wallet.
    wallet: str

    async def post(self, path: str, body: object, **headers: str) -> httpx.Response:
        return await self.client.post(path, json=body, headers=headers)

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.client.get(path, params=params)


@pytest.fixture
async def api(database_url: str, gateway_url: str, platform: Platform) -> AsyncIterator[Api]:
    merchant_id, key, wallet = await new_merchant(database_url, platform)
    async with httpx.AsyncClient(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {key}"},
        trust_env=False,
        timeout=30,
    ) as client:
        yield Api(client, merchant_id, key, platform, wallet)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    context.set_default_timeout(10_000)
    yield await context.new_page()
    await context.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: $TEST_ARTIFACTS_DIR if set, else the test's tmp_path."""
    folder = Path(os.environ.get("TEST_ARTIFACTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder

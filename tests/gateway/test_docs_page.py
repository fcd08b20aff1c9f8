"""/docs in Chromium on a machine without internet: Swagger UI's scripts come from the gateway
itself, and the page lists every operation of the OpenAPI document."""

from pathlib import Path

import httpx
from playwright.async_api import Page, Request

from tests.gateway.test_checkout_page import screenshot


async def test_the_docs_page_lists_every_operation_from_local_assets(
    gateway_url: str, page: Page, artifacts: Path
) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False) as client:
        document = (await client.get("/openapi.json")).json()
    operations = sorted(
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method in methods
    )
    requested: list[str] = []

    def remember(request: Request) -> None:
        requested.append(request.url)

    page.on("request", remember)
    await page.goto(f"{gateway_url}/docs")
    blocks = page.locator(".opblock-summary")
    await blocks.nth(len(operations) - 1).wait_for()
    shown = sorted(
        await page.eval_on_selector_all(
            ".opblock-summary",
            """blocks => blocks.map(b =>
                b.querySelector('.opblock-summary-method').textContent + ' ' +
                b.querySelector('.opblock-summary-path').getAttribute('data-path'))""",
        )
    )
    await screenshot(page, artifacts / "docs.png")

    assert shown == operations
    assert len(operations) > 30
    assert requested and all(url.startswith(gateway_url) for url in requested), requested

"""A subscriber's wallet in tests: anvil's dev accounts, for which anvil signs typed data.

Over REST it signs x402 payloads with eth_signTypedData_v4. In Chromium it is an EIP-1193
provider (`window.ethereum`) injected with `page.add_init_script` whose every request Playwright
forwards to anvil's JSON-RPC from outside the page, as a wallet extension answers from outside
it: the page's Content-Security-Policy (its own origin only) holds for the page alone."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from playwright.async_api import Page

from devstack import eip3009
from devstack.chain import Anvil, MockUsdc
from tests.conftest import RELAYER_ACCOUNT

# The dev account that pays in the gateway's tests; they measure its balance before and after.
PAYER = 3
REFUSED = {"code": 4001, "message": "User rejected the request."}

PROVIDER = """
window.ethereum = {
  isTestWallet: true,
  async request({method, params}) {
    const answer = await window.testWalletForward(method, params || []);
    if (answer.error) {
      const error = new Error(answer.error.message);
      error.code = answer.error.code;
      throw error;
    }
    return answer.result;
  },
};
"""


async def rpc(anvil: Anvil, method: str, params: list[Any]) -> dict[str, Any]:
    """anvil's JSON-RPC answer: {"result": ...} or {"error": {"code", "message"}}."""
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        answer = await client.post(
            anvil.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
    body: dict[str, Any] = answer.json()
    return body


def unix(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp())


def authorization(payer: str, request: dict[str, Any], **overrides: str) -> dict[str, str]:
    """What the hosted page has the wallet sign for a payment request (x402's field names)."""
    fields = {
        "from": payer,
        "to": request["payeeWalletAddress"],
        "value": request["amountBaseUnits"],
        "validAfter": "0",
        "validBefore": str(unix(request["expireTime"])),
        "nonce": request["referenceHash"],
    }
    return {**fields, **overrides}


def typed_data(request: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return eip3009.typed_data(
        request["tokenName"],
        request["tokenVersion"],
        int(request["chainId"]),
        request["tokenAddress"],
        fields,
    )


async def signed(
    anvil: Anvil,
    request: dict[str, Any],
    *,
    account: int = PAYER,
    signer: int | None = None,
    overrides: dict[str, str] | None = None,
) -> dict[str, Any]:
    """x402's `exact` payload from dev account `account` (with `overrides` of its fields),
    signed by anvil for `signer` (the same account unless told)."""
    fields = authorization(anvil.accounts[account], request, **(overrides or {}))
    by = anvil.accounts[account if signer is None else signer]
    answer = await rpc(anvil, "eth_signTypedData_v4", [by, json.dumps(typed_data(request, fields))])
    return {"authorization": fields, "signature": answer["result"]}


@dataclass
class InjectedWallet:
    """What the page asked the wallet, in order."""

    asked: list[str] = field(default_factory=list)


async def inject_wallet(
    page: Page, anvil: Anvil, account: int = PAYER, refuse: str = ""
) -> InjectedWallet:
    """`window.ethereum` in every document of the page, connected as dev account `account`; the
    method named by `refuse` answers EIP-1193's 4001 (the user rejected it)."""
    wallet = InjectedWallet()

    async def forward(method: str, params: list[Any]) -> dict[str, Any]:
        wallet.asked.append(method)
        if method == refuse:
            return {"error": REFUSED}
        if method == "eth_requestAccounts":
            return {"result": [anvil.accounts[account]]}
        return await rpc(anvil, method, params)

    await page.expose_function("testWalletForward", forward)
    await page.add_init_script(PROVIDER)
    return wallet


async def relayer_nonce(usdc: MockUsdc, anvil: Anvil) -> int:
    """Transactions the platform's relayer has sent so far."""
    relayer = usdc.w3.to_checksum_address(anvil.accounts[RELAYER_ACCOUNT])
    return int(await usdc.w3.eth.get_transaction_count(relayer))

"""Time from a signed EIP-3009 authorization to the invoice PAID, on a chain mining a block a
second, with the 3 confirmations settlement requires (p50/p99 of PAYMENTS payments).

Setup (not timed): a usage-based subscription through REST, PAYMENTS invoices of 0.5 USDC, each
invoice's paymentRequest read through REST, and anvil.accounts[3] funded; every authorization is
signed beforehand with eth-account (a wallet's signature takes the subscriber's time, not the
platform's). Then anvil stops automining and mines one block a second (evm_setIntervalMining).

Timed, per payment, one started every STAGGER seconds: from the POST of the signed authorization
to the public relay (POST /api/v1/invoices/{id}/pay) until invoicing has the invoice PAID
(polled with asyncpg). Baseline, in the same run and on the same chain: a plain USDC transfer
sent with eth_sendTransaction until the block holding it has 3 blocks on top, which is the floor
any platform waiting for 3 confirmations has. Exactness, or it raises: every relay answers 202,
every invoice is PAID, the merchant wallet grew by exactly PAYMENTS x 0.5 USDC.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from eth_account import Account

from bench.figures import Figure
from bench.figures.rest import client, post, subscribe
from bench.figures.settlement import _rpc
from bench.stack import MERCHANT, Stack
from devstack import eip3009
from devstack.chain import MockUsdc

PAYMENTS = 30
BASELINE_TRANSFERS = 10
STAGGER = 0.25
BASE_UNITS = 500_000
PAYER = 3
POLL_SECONDS = 0.02
TIMEOUT_SECONDS = 60.0
PAID = "SELECT status FROM invoicing.invoices WHERE merchant_id = $1 AND id = $2"


def _signed(key: str, request: dict[str, Any]) -> dict[str, Any]:
    expiry = datetime.fromisoformat(request["expireTime"].replace("Z", "+00:00"))
    message = {
        "from": Account.from_key(key).address,
        "to": request["payeeWalletAddress"],
        "value": int(request["amountBaseUnits"]),
        "validAfter": 0,
        "validBefore": int(expiry.timestamp()),
        "nonce": request["referenceHash"],
    }
    signature = eip3009.sign(
        key,
        request["tokenName"],
        request["tokenVersion"],
        int(request["chainId"]),
        request["tokenAddress"],
        message,
    )
    return {"authorization": {k: str(v) for k, v in message.items()}, "signature": signature}


async def _prepared(stack: Stack, api: httpx.AsyncClient) -> list[tuple[str, dict[str, Any]]]:
    subscription = await subscribe(stack, api, "bench relay")
    key = stack.anvil.private_keys[PAYER]
    prepared = []
    for _ in range(PAYMENTS):
        body = {
            "subscriptionId": subscription.id,
            "paymentPlanId": subscription.plan_id,
            "amount": "0.5",
        }
        invoice = await post(api, "/api/v1/invoices", body)
        # The ledger records the invoice through invoicing's outbox; the relay needs it.
        for _ in range(200):
            found = (await api.get(f"/api/v1/invoices/{invoice['id']}")).json()
            if found.get("paymentRequest"):
                break
            await asyncio.sleep(0.05)
        prepared.append((invoice["id"], _signed(key, found["paymentRequest"])))
    return prepared


async def _paid_after(
    stack: Stack, public: httpx.AsyncClient, invoice_id: str, body: dict[str, Any]
) -> float:
    connection = await asyncpg.connect(stack.dsn)
    try:
        started = time.perf_counter()
        answer = await public.post(f"/api/v1/invoices/{invoice_id}/pay", json=body)
        if answer.status_code != 202:
            raise RuntimeError(f"relay of {invoice_id}: {answer.status_code} {answer.text}")
        while time.perf_counter() - started < TIMEOUT_SECONDS:
            if await connection.fetchval(PAID, MERCHANT, invoice_id) == "PAID":
                return time.perf_counter() - started
            await asyncio.sleep(POLL_SECONDS)
        raise RuntimeError(f"invoice {invoice_id} was not PAID within {TIMEOUT_SECONDS} s")
    finally:
        await connection.close()


async def _confirmed_after(usdc: MockUsdc, sender: str, receiver: str) -> float:
    """A plain transfer, until its block has 3 blocks on top."""
    data = usdc.contract.encode_abi("transfer", args=[receiver, 1])
    started = time.perf_counter()
    sent = await _rpc(
        usdc, "eth_sendTransaction", [{"from": sender, "to": usdc.address, "data": data}]
    )
    while time.perf_counter() - started < TIMEOUT_SECONDS:
        receipt = await _rpc(usdc, "eth_getTransactionReceipt", [sent])
        head = int(await _rpc(usdc, "eth_blockNumber", []), 16)
        if receipt is not None and head - int(receipt["blockNumber"], 16) >= 3:
            return time.perf_counter() - started
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError("the baseline transfer was not confirmed")


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def _staggered(jobs: list[Any]) -> list[float]:
    async def later(i: int, job: Any) -> float:
        await asyncio.sleep(i * STAGGER)
        result: float = await job
        return result

    return list(await asyncio.gather(*(later(i, job) for i, job in enumerate(jobs))))


async def measure(stack: Stack) -> list[Figure]:
    usdc = MockUsdc.at(stack.anvil.url, stack.usdc_address)
    accounts = stack.anvil.accounts
    try:
        async with client(stack) as api:
            prepared = await _prepared(stack, api)
        await usdc.mint(accounts[PAYER], PAYMENTS * BASE_UNITS, accounts[0])
        await usdc.mint(accounts[4], BASELINE_TRANSFERS, accounts[0])
        received_before = await usdc.balance(accounts[2])
        await _rpc(usdc, "evm_setAutomine", [False])
        await _rpc(usdc, "evm_setIntervalMining", [1])
        try:
            async with httpx.AsyncClient(
                base_url=stack.gateway_url, trust_env=False, timeout=30
            ) as public:
                paid = await _staggered(
                    [_paid_after(stack, public, i, body) for i, body in prepared]
                )
            floor = await _staggered(
                [
                    _confirmed_after(usdc, accounts[4], accounts[5])
                    for _ in range(BASELINE_TRANSFERS)
                ]
            )
        finally:
            await _rpc(usdc, "evm_setIntervalMining", [0])
            await _rpc(usdc, "evm_setAutomine", [True])
        received = await usdc.balance(accounts[2]) - received_before
        if received != PAYMENTS * BASE_UNITS:
            raise RuntimeError(f"the merchant received {received} base units")
    finally:
        await usdc.close()
    p50, p99, floor_p50 = statistics.median(paid), _p99(paid), statistics.median(floor)
    print(
        f"  relay: {PAYMENTS} authorizations to PAID: p50 {p50:.2f} s, p99 {p99:.2f} s; "
        f"plain transfer to 3 confirmations p50 {floor_p50:.2f} s",
        file=sys.stderr,
        flush=True,
    )
    baseline = "plain transfer to 3 confirmations (1 block/s)"
    return [
        Figure("signed authorization to invoice PAID, p50", p50, "s", baseline, floor_p50),
        Figure("signed authorization to invoice PAID, p99", p99, "s", baseline, floor_p50),
    ]

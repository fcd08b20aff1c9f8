"""Settlement of 1,000 confirmed transfers as they are submitted (settlements/s, and invoices
PAID/s), and the verifier's passes over 1,000 pending settlements (settlements/s).

Setup (not timed): one usage-based subscription of usr_bench through the REST API (as in
bench/figures/rest.py), then 1,000 Retempo invoices of 0.5 USDC (POST /api/v1/invoices, 16 at a
time), each OPEN. On anvil, anvil.accounts[0] mints 500 USDC to anvil.accounts[1], which sends
1,000 real MockUSDC transfers of 500000 base units to the merchant wallet (anvil.accounts[2]):
eth_sendTransaction with explicit gas, one after the other, every one automined in its own
block; all receipts must have succeeded; then 3 more blocks are mined so that every transfer has
the 3 confirmations the settlement service requires.

Timed: the 1,000 settlements are submitted through REST POST /api/v1/settlements, 16 at a time
(SubmitSettlement checks the chain inline, so most answer CONFIRMED at once; the verifier loop
confirms the rest). Counts are polled with asyncpg every POLL_SECONDS: the wall time runs from
the first submit until all 1,000 settlements are CONFIRMED, and until all 1,000 invoices are
PAID (invoicing hears of it through settlement's outbox).

Exactness, or it raises: every transfer mined, every answer 2xx, 1,000 CONFIRMED settlements
each with amount_paid 0.5, 1,000 PAID invoices, the merchant wallet 500 USDC richer, and the
ledger's usdc_received debits of mer_bench grown by exactly 500.000000.

The verifier's figure: as many invoices and transfers again, but mined with automine off (a
few blocks of many transfers each, none with 3 confirmations), and all 1,000 proofs submitted
(untimed; each answers PENDING). Timed: from mining the 3 confirming blocks until all 1,000 are
CONFIRMED by the verifier's background passes (the first may start up to the poll interval
later). The same exactness checks follow.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import httpx

from bench.figures import Figure
from bench.figures.rest import Subscription, client, post, subscribe
from bench.stack import MERCHANT, Stack
from devstack.chain import MockUsdc

T = TypeVar("T")
PAYMENTS = 1_000
AMOUNT = "0.5"
BASE_UNITS = 500_000  # 0.5 USDC
CONCURRENCY = 16
TRANSFER_GAS = 100_000
POLL_SECONDS = 0.02
TIMEOUT_SECONDS = 180.0
VERIFIER_TARGET = 300  # settlements/s, issue 14

CONFIRMED = """
SELECT count(*) FROM settlement.settlements
WHERE merchant_id = $1 AND status = 'CONFIRMED' AND invoice_id = ANY($2::text[])
"""
PAID = """
SELECT count(*) FROM invoicing.invoices
WHERE merchant_id = $1 AND status = 'PAID' AND id = ANY($2::text[])
"""
RECEIVED = """
SELECT coalesce(sum(debit), 0) FROM settlement.journal_entries
WHERE merchant_id = $1 AND account = 'usdc_received'
"""


async def bounded(limit: int, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Runs the jobs at most `limit` at a time; answers in the jobs' order."""
    results: list[Any] = [None] * len(jobs)
    queue = iter(range(len(jobs)))

    async def worker() -> None:
        for i in queue:
            results[i] = await jobs[i]()

    await asyncio.gather(*(worker() for _ in range(limit)))
    return results


async def _rpc(usdc: MockUsdc, method: str, params: list[Any]) -> Any:
    answer: Any = await usdc.w3.provider.make_request(method, params)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


async def transfers(
    usdc: MockUsdc, payer: str, merchant: str, minter: str, *, confirmed: bool = True
) -> list[str]:
    """PAYMENTS mined transfers of BASE_UNITS from payer to merchant, then 3 more blocks; or,
    not `confirmed`, mined a block of as many as fit at a time, and no block more."""
    await usdc.mint(payer, PAYMENTS * BASE_UNITS, minter)
    if not confirmed:
        await _rpc(usdc, "evm_setAutomine", [False])
    data = usdc.contract.encode_abi("transfer", args=[merchant, BASE_UNITS])
    # One at a time: anvil gives each its nonce and automines it in its own block. (Sent
    # concurrently, anvil either hands out a nonce twice or, with explicit nonces, leaves a
    # transaction that arrived before its predecessor queued for good.)
    hashes = []
    for _ in range(PAYMENTS):
        transaction = {"from": payer, "to": usdc.address, "data": data, "gas": hex(TRANSFER_GAS)}
        hashes.append(str(await _rpc(usdc, "eth_sendTransaction", [transaction])))
    if not confirmed:
        await _mine_all(usdc, hashes[-1])
        await _rpc(usdc, "evm_setAutomine", [True])

    def receipt(tx_hash: str) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def job() -> dict[str, Any]:
            for _ in range(500):
                found = await _rpc(usdc, "eth_getTransactionReceipt", [tx_hash])
                if found is not None:
                    return dict(found)
                await asyncio.sleep(0.02)
            raise RuntimeError(f"transfer {tx_hash} was never mined")

        return job

    receipts = await bounded(CONCURRENCY, [receipt(h) for h in hashes])
    failed = [r["transactionHash"] for r in receipts if int(r["status"], 16) != 1]
    if failed or len(set(hashes)) != PAYMENTS:
        raise RuntimeError(f"{len(failed)} transfers reverted, {len(set(hashes))} distinct")
    if confirmed:
        await usdc.mine(3)
    return hashes


async def _mine_all(usdc: MockUsdc, last: str) -> None:
    """Mines blocks until the last transfer sent is in one (a block takes what its gas limit
    fits, in nonce order)."""
    while await _rpc(usdc, "eth_getTransactionReceipt", [last]) is None:
        await _rpc(usdc, "evm_mine", [])


@dataclass
class Finish:
    """When each count first reached its goal, in seconds after the first submit."""

    confirmed: float | None = None
    paid: float | None = None


async def watch(
    dsn: str, invoices: list[str], started: float, finish: Finish, stop: asyncio.Event
) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        while not stop.is_set() and (finish.confirmed is None or finish.paid is None):
            if (
                finish.confirmed is None
                and await connection.fetchval(CONFIRMED, MERCHANT, invoices) == PAYMENTS
            ):
                finish.confirmed = time.perf_counter() - started
            if (
                finish.paid is None
                and await connection.fetchval(PAID, MERCHANT, invoices) == PAYMENTS
            ):
                finish.paid = time.perf_counter() - started
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await connection.close()


async def _create_invoices(api: httpx.AsyncClient, subscription_id: str, plan: str) -> list[str]:
    def create() -> Callable[[], Awaitable[dict[str, Any]]]:
        body = {"subscriptionId": subscription_id, "paymentPlanId": plan, "amount": AMOUNT}
        return lambda: post(api, "/api/v1/invoices", body)

    invoices = await bounded(CONCURRENCY, [create() for _ in range(PAYMENTS)])
    not_open = [i["id"] for i in invoices if i["status"] != "OPEN"]
    if not_open:
        raise RuntimeError(f"{len(not_open)} new invoices are not OPEN, e.g. {not_open[0]}")
    return [str(i["id"]) for i in invoices]


async def _check(dsn: str, invoices: list[str], received_before: Decimal) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        paid_amounts = await connection.fetch(
            "SELECT amount_paid, count(*) AS n FROM settlement.settlements "
            "WHERE merchant_id = $1 AND invoice_id = ANY($2::text[]) GROUP BY amount_paid",
            MERCHANT,
            invoices,
        )
        received = Decimal(await connection.fetchval(RECEIVED, MERCHANT))
    finally:
        await connection.close()
    amounts = {str(r["amount_paid"]): int(r["n"]) for r in paid_amounts}
    if amounts != {"0.500000": PAYMENTS}:
        raise RuntimeError(f"settlements by amount paid: {amounts}")
    if received - received_before != Decimal(PAYMENTS) * Decimal(AMOUNT):
        raise RuntimeError(
            f"the ledger's usdc_received grew by {received - received_before}, "
            f"not {Decimal(PAYMENTS) * Decimal(AMOUNT):.6f}"
        )


@dataclass
class Paid:
    """PAYMENTS open invoices, a mined transfer for each, and the ledger's usdc_received before
    any of them is settled."""

    invoices: list[str]
    hashes: list[str]
    received_before: Decimal


async def _paid(
    stack: Stack, api: httpx.AsyncClient, subscription: Subscription, *, confirmed: bool
) -> Paid:
    payer, merchant = stack.anvil.accounts[1], stack.anvil.accounts[2]
    invoices = await _create_invoices(api, subscription.id, subscription.plan_id)
    usdc = MockUsdc.at(stack.anvil.url, stack.usdc_address)
    try:
        merchant_before = await usdc.balance(merchant)
        hashes = await transfers(
            usdc, payer, merchant, stack.anvil.accounts[0], confirmed=confirmed
        )
        merchant_after = await usdc.balance(merchant)
    finally:
        await usdc.close()
    if merchant_after - merchant_before != PAYMENTS * BASE_UNITS:
        raise RuntimeError(f"the merchant received {merchant_after - merchant_before}")
    connection = await asyncpg.connect(stack.dsn)
    try:
        received_before = Decimal(await connection.fetchval(RECEIVED, MERCHANT))
    finally:
        await connection.close()
    return Paid(invoices, hashes, received_before)


def _submissions(
    stack: Stack, api: httpx.AsyncClient, paid: Paid
) -> list[Callable[[], Awaitable[dict[str, Any]]]]:
    def submit(invoice: str, tx_hash: str) -> Callable[[], Awaitable[dict[str, Any]]]:
        body = {
            "invoiceId": invoice,
            "referenceHash": "0x" + hashlib.sha256(invoice.encode()).hexdigest(),
            "transactionHash": tx_hash,
            "payerWalletAddress": stack.anvil.accounts[1],
            "merchantWalletAddress": stack.anvil.accounts[2],
        }
        return lambda: post(api, "/api/v1/settlements", body)

    return [submit(i, h) for i, h in zip(paid.invoices, paid.hashes, strict=True)]


async def _until_settled(
    stack: Stack, invoices: list[str], work: Callable[[], Awaitable[T]]
) -> tuple[T, float, Finish]:
    """Runs `work` and waits until all invoices' settlements are CONFIRMED and the invoices
    PAID; answers its result, how long it took, and when the counts got there."""
    finish, stop = Finish(), asyncio.Event()
    started = time.perf_counter()
    watcher = asyncio.create_task(watch(stack.dsn, invoices, started, finish, stop))
    try:
        result = await work()
        took = time.perf_counter() - started
        await asyncio.wait_for(asyncio.shield(watcher), TIMEOUT_SECONDS)
    except TimeoutError:
        raise RuntimeError(
            f"after {TIMEOUT_SECONDS:.0f} s: all confirmed at {finish.confirmed}, "
            f"all paid at {finish.paid}"
        ) from None
    finally:
        stop.set()
        await watcher
    return result, took, finish


async def _submitted(
    stack: Stack, api: httpx.AsyncClient, subscription: Subscription
) -> list[Figure]:
    paid = await _paid(stack, api, subscription, confirmed=True)
    jobs = _submissions(stack, api, paid)
    answers, submitted, finish = await _until_settled(
        stack, paid.invoices, lambda: bounded(CONCURRENCY, jobs)
    )
    assert finish.confirmed is not None and finish.paid is not None
    at_once = sum(1 for a in answers if a["status"] == "CONFIRMED")
    await _check(stack.dsn, paid.invoices, paid.received_before)
    print(
        f"  settlement: submitted in {submitted:.2f} s, {at_once} of {PAYMENTS} answered "
        f"CONFIRMED at once; all CONFIRMED at {finish.confirmed:.2f} s, "
        f"all PAID at {finish.paid:.2f} s",
        file=sys.stderr,
        flush=True,
    )
    return [
        Figure(
            f"settlement verification, {PAYMENTS:,} transfers",
            PAYMENTS / finish.confirmed,
            "settlements/s",
        ),
        Figure(
            f"settlement verification, {PAYMENTS:,} transfers, until invoices PAID",
            PAYMENTS / finish.paid,
            "invoices/s",
        ),
    ]


async def _verified(
    stack: Stack, api: httpx.AsyncClient, subscription: Subscription
) -> list[Figure]:
    paid = await _paid(stack, api, subscription, confirmed=False)
    answers = await bounded(CONCURRENCY, _submissions(stack, api, paid))
    early = [a["id"] for a in answers if a["status"] != "PENDING"]
    if early:
        raise RuntimeError(f"{len(early)} settlements were not PENDING at first, e.g. {early[0]}")
    usdc = MockUsdc.at(stack.anvil.url, stack.usdc_address)
    try:
        _, _, finish = await _until_settled(stack, paid.invoices, lambda: usdc.mine(3))
    finally:
        await usdc.close()
    assert finish.confirmed is not None and finish.paid is not None
    await _check(stack.dsn, paid.invoices, paid.received_before)
    print(
        f"  settlement verifier: all CONFIRMED {finish.confirmed:.2f} s after the confirming "
        f"blocks, all PAID at {finish.paid:.2f} s",
        file=sys.stderr,
        flush=True,
    )
    rate = PAYMENTS / finish.confirmed
    return [
        Figure(
            f"settlement verifier passes, {PAYMENTS:,} pending settlements",
            rate,
            "settlements/s",
            target=f">= {VERIFIER_TARGET}/s",
            met=rate >= VERIFIER_TARGET,
        )
    ]


async def measure(stack: Stack) -> list[Figure]:
    async with client(stack) as api:
        subscription = await subscribe(stack, api, "bench settlement")
        return await _submitted(stack, api, subscription) + await _verified(
            stack, api, subscription
        )

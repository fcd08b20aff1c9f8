"""The chain watcher's throughput: 10,000 payments by EIP-3009 authorization recognised (payments
recognised per second), next to plain eth_getLogs over the same blocks.

Setup (not timed): a database of its own in the stack's cluster, migrated with settlement's
schema only, so that no service process shares the watcher's cursor or verifies what it makes;
10,000 payment requests of 0.5 USDC of one merchant, random reference hashes, COPYed in. On the
stack's anvil, anvil.accounts[4] is minted 5,000 USDC and signs 10,000 TransferWithAuthorization
to a fresh payee wallet, each bound to one request by its nonce (anvil's eth_signTypedData_v4,
16 at a time); anvil.accounts[5] submits them with automine off, PER_BLOCK per mined block. All
receipts must have succeeded. The stack's own settlement process follows the same token: the
figure waits until its watcher has read past the payments (its nonces are no request of its).

Timed: watch_once passes of a settlement built in this process (the service's code, against the
stack's anvil and PostgreSQL, default 2,000 blocks per range), from its cursor at the first
payment's block until a pass reads nothing more; payments recognised per second = 10,000 / wall
time. Baseline: the same blocks read with the chain adapter's plain eth_getLogs (same token,
topics and ranges), nothing decoded or stored. Exactness, or it raises: 10,000 PENDING WATCHER
settlements, one per request, each of the payer and 0.500000 due; no credit; the payee holds
exactly 5,000 USDC.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.figures import Figure
from bench.figures.settlement import _rpc, bounded
from bench.stack import REPO, Stack
from devstack import eip3009
from devstack.chain import CHAIN_ID, MockUsdc, split_signature
from devstack.postgres import libpq_dsn
from service_kit import migrations
from settlement_svc import bootstrap
from settlement_svc.domain.chain_logs import AUTHORIZATION_USED_TOPIC, TRANSFER_TOPIC
from settlement_svc.service_layer.watcher import watch_once
from settlement_svc.settings import SettlementSettings

PAYMENTS = 10_000
PER_BLOCK = 200
BASE_UNITS = 500_000
PAYER, SUBMITTER = 4, 5
# Gas of one transferWithAuthorization on MockUSDC is about 80,000; anvil refunds the rest.
AUTHORIZATION_GAS = 150_000
SIGNING_CONCURRENCY = 16
DATABASE = "watcher_bench"
MERCHANT = "mer_watcher_bench"


@dataclass(frozen=True)
class Bound:
    """A payment request to pay: the nonce the authorization carries, whom it pays, how much."""

    reference_hash: str
    payee: str
    base_units: int


async def pay_by_authorization(
    usdc: MockUsdc, payer: str, submitter: str, payments: Sequence[Bound], per_block: int
) -> list[str]:
    """Each payment as a TransferWithAuthorization that `payer` (an anvil dev account, which
    anvil signs for) signs and `submitter` sends, `per_block` to a mined block; answers the
    transactions, all mined and succeeded. The payer must hold the money."""
    valid_before = await usdc.block_time() + 24 * 3600

    async def signed(payment: Bound) -> tuple[dict[str, Any], str]:
        message: dict[str, Any] = {
            "from": payer,
            "to": payment.payee,
            "value": payment.base_units,
            "validAfter": 0,
            "validBefore": valid_before,
            "nonce": payment.reference_hash,
        }
        typed = eip3009.typed_data("USD Coin", "2", CHAIN_ID, usdc.address, message)
        return message, str(await _rpc(usdc, "eth_signTypedData_v4", [payer, typed]))

    signatures = await bounded(SIGNING_CONCURRENCY, [partial(signed, p) for p in payments])
    await _rpc(usdc, "evm_setAutomine", [False])
    hashes = []
    try:
        for start in range(0, len(signatures), per_block):
            # One at a time: anvil gives each its nonce (see bench/figures/settlement.py).
            for message, signature in signatures[start : start + per_block]:
                hashes.append(await _submit(usdc, submitter, message, signature))
            await _rpc(usdc, "evm_mine", [])
        while await _rpc(usdc, "eth_getTransactionReceipt", [hashes[-1]]) is None:
            await _rpc(usdc, "evm_mine", [])
    finally:
        await _rpc(usdc, "evm_setAutomine", [True])
    receipts = await bounded(
        SIGNING_CONCURRENCY, [partial(_rpc, usdc, "eth_getTransactionReceipt", [h]) for h in hashes]
    )
    failed = [r for r in receipts if r is None or int(r["status"], 16) != 1]
    if failed or len(set(hashes)) != len(payments):
        raise RuntimeError(f"{len(failed)} authorizations failed, {len(set(hashes))} distinct")
    return hashes


async def _submit(usdc: MockUsdc, submitter: str, message: dict[str, Any], signature: str) -> str:
    v, r, s = split_signature(signature)
    data = usdc.contract.encode_abi(
        "transferWithAuthorization",
        args=[
            message["from"],
            message["to"],
            message["value"],
            message["validAfter"],
            message["validBefore"],
            bytes.fromhex(message["nonce"][2:]),
            v,
            r,
            s,
        ],
    )
    transaction = {
        "from": submitter,
        "to": usdc.address,
        "data": data,
        "gas": hex(AUTHORIZATION_GAS),
    }
    return str(await _rpc(usdc, "eth_sendTransaction", [transaction]))


async def _own_database(stack: Stack) -> str:
    connection = await asyncpg.connect(stack.dsn)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        await connection.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await connection.close()
    url = make_url(stack.database_url).set(database=DATABASE).render_as_string(False)
    await asyncio.to_thread(migrations.upgrade, REPO / "settlement_svc" / "migrations", url)
    return url


async def _add_requests(dsn: str, payments: Sequence[Bound], token: str) -> None:
    now = datetime.now(UTC)
    rows = [
        (
            p.reference_hash,
            MERCHANT,
            f"in_watcher_bench_{i:05d}",
            f"usr_watcher_bench_{i:05d}",
            Decimal(p.base_units) / 1_000_000,
            p.payee,
            token,
            CHAIN_ID,
            now,
            now + timedelta(days=7),
        )
        for i, p in enumerate(payments)
    ]
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "payment_requests",
            schema_name="settlement",
            records=rows,
            columns=[
                "reference_hash",
                "merchant_id",
                "invoice_id",
                "user_id",
                "amount",
                "payee_wallet_address",
                "token_address",
                "chain_id",
                "create_time",
                "expire_time",
            ],
        )
    finally:
        await connection.close()


async def _stack_watcher_past(stack: Stack, block: int) -> None:
    """Waits until the stack's own settlement process has read past `block` (it would compete
    for the CPU otherwise)."""
    connection = await asyncpg.connect(stack.dsn)
    try:
        for _ in range(6000):
            cursor = await connection.fetchval(
                "SELECT next_block FROM settlement.watcher_cursors WHERE lower(token_address) = $1",
                stack.usdc_address.lower(),
            )
            if cursor is not None and cursor > block:
                return
            await asyncio.sleep(0.01)
    finally:
        await connection.close()
    raise RuntimeError("the stack's watcher did not read past the payments")


async def _check(dsn: str, payments: Sequence[Bound], payer: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT reference_hash, payer_wallet_address, amount_due, status, origin"
            " FROM settlement.settlements"
        )
        credits = await connection.fetchval("SELECT count(*) FROM settlement.credits")
    finally:
        await connection.close()
    expected = {
        (p.reference_hash, payer, Decimal("0.500000"), "PENDING", "WATCHER") for p in payments
    }
    found = {tuple(row) for row in rows}
    if len(rows) != len(payments) or found != expected or credits != 0:
        raise RuntimeError(
            f"{len(rows)} settlements ({len(found & expected)} as expected), {credits} credits"
        )


async def measure(stack: Stack) -> list[Figure]:
    usdc = MockUsdc.at(stack.anvil.url, stack.usdc_address)
    accounts = stack.anvil.accounts
    payer, submitter = accounts[PAYER], accounts[SUBMITTER]
    payee = usdc.w3.to_checksum_address("0x" + secrets.token_hex(20))
    payments = [Bound("0x" + secrets.token_hex(32), payee, BASE_UNITS) for _ in range(PAYMENTS)]
    url = await _own_database(stack)
    await _add_requests(libpq_dsn(url), payments, stack.usdc_address)
    settings = SettlementSettings(
        database_url=url,
        service_token=stack.credentials.token,
        chain_rpc_url=stack.anvil.url,
        usdc_contract_address=stack.usdc_address,
        watcher_start_block=await usdc.w3.eth.block_number + 1,
    )
    service = bootstrap.build(settings)
    try:
        await usdc.mint(payer, PAYMENTS * BASE_UNITS, accounts[0])
        print(f"  paying {PAYMENTS:,} authorizations ...", file=sys.stderr, flush=True)
        hashes = await pay_by_authorization(usdc, payer, submitter, payments, PER_BLOCK)
        last = int((await _rpc(usdc, "eth_getTransactionReceipt", [hashes[-1]]))["blockNumber"], 16)
        first = settings.watcher_start_block
        assert first is not None
        await _stack_watcher_past(stack, last)

        started = time.perf_counter()
        while await watch_once(service):
            pass
        watched = time.perf_counter() - started
        await _check(libpq_dsn(url), payments, payer)
        if await usdc.balance(payee) != PAYMENTS * BASE_UNITS:
            raise RuntimeError("the payee does not hold every payment")

        started = time.perf_counter()
        logs = 0
        for start in range(first, last + 1, settings.watcher_max_blocks):
            end = min(last, start + settings.watcher_max_blocks - 1)
            found = await service.chain.logs(
                stack.usdc_address, [[AUTHORIZATION_USED_TOPIC, TRANSFER_TOPIC]], start, end
            )
            logs += len(found)
        read = time.perf_counter() - started
        if logs < 2 * PAYMENTS:
            raise RuntimeError(f"eth_getLogs found {logs} logs for {PAYMENTS} payments")
    finally:
        await bootstrap.close(service)
        await usdc.close()
    blocks = last - first + 1
    return [
        Figure(
            name=f"chain watcher, {PAYMENTS:,} payments in {blocks} blocks",
            value=PAYMENTS / watched,
            unit="payments recognised/s",
            baseline="plain eth_getLogs of the same blocks",
            baseline_value=PAYMENTS / read,
        )
    ]

"""Month-end collection of 10,000 invoices under mandates: collections sent per second and the
time until every invoice is paid, next to one account sending as many plain USDC transfers.

Setup (not timed). Through invoicing's gRPC API, a service and a FIXED_RECURRING plan of 1.25
USDC a month. N subscriptions of mer_bench (one subscriber each), in period 0 of a month that
ends in about ten days, written straight into metering's replica and invoicing's table as the
period-close figure writes them (bench/figures/load.py). On anvil, N fresh payer addresses
(random: anvil impersonates them, so the set-up signs nothing): ether by anvil_setBalance, 2.5
USDC each minted by anvil.accounts[0], then each payer's own approve of the mandate contract and
create_mandate for the merchant's payout wallet (cap 5 USDC per 30 days, a year long), sent in
JSON-RPC batches with automine off and mined block by block. Settlement learns of enrolments only
from the mandates it relayed, so the N records CreateMandate would have stored (PENDING, the
payer's own creation as their transaction) are COPYed into settlement's table before the
creations are mined; the stack's settlement then follows the contract's logs as for any
mandate (ACTIVE once final, invoicing told through the outbox). The figure waits until all N are
ACTIVE and both outboxes are delivered, then anvil mines a block a second
(evm_setIntervalMining), as in the relay figure.

Timed. Month end: every subscription's test clock (AdvanceTestClock's field) is set two hours
past its period end in one UPDATE; from there everything is the stack's own processes:
invoicing's scheduler closes the N periods (the invoices OPEN), its outbox records them in
settlement (BatchRecordInvoices), which schedules a collection of each in the recording
transaction; settlement's collector pass pre-checks each on chain, signs, stores and sends it;
the verifier confirms each MANDATE settlement at 3 confirmations; invoicing hears of each
through settlement's outbox. Figures, from the database's own timestamps: collections sent per
second from the first collection due (its creation) to the last transaction sent, and the time
from the first due until the last settlement CONFIRMED; the invoices all PAID in invoicing
(polled) is printed. Baseline, in the same run on the same chain: a fresh account (eth-account
key, ether by anvil_setBalance, N x 1.25 USDC minted) signs N transfers with sequential nonces
and sends each (eth_sendRawTransaction), one after the other, as the collector does; sent per
second from the first signature to the last send, and the time until the last has 3
confirmations (so all have: the nonces are mined in order).

Exactness, or it raises: N collections SENT, each with one attempt and no failure; N MANDATE
settlements CONFIRMED, each paying 1.250000; the contract's logs since month end hold exactly N
Collected events, of N distinct references (those of the collections), each from a payer of the
figure to the merchant wallet for 1250000; every payer holds exactly 1.25 USDC, the merchant
wallet N x 1.25 more; N invoices PAID; the baseline's receipts all succeeded and its receiver
holds N x 1.25 USDC.

`BENCH_COLLECTIONS=1000 python -m bench collections` runs it with fewer invoices.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from eth_abi.abi import encode
from eth_account import Account
from eth_utils.address import to_checksum_address

from bench.figures import Figure
from bench.figures.load import (
    copy_invoicing_subscriptions,
    copy_metering_replicas,
    subscriber_of,
)
from bench.stack import MERCHANT, Stack
from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from devstack.chain import CHAIN_ID
from devstack.mandates import Mandates
from invoicing_svc.domain.model import BillingInterval
from invoicing_svc.domain.periods import period_bounds
from service_kit.channels import open_channel
from service_kit.tenancy import MERCHANT_METADATA_KEY
from settlement_svc.adapters.usdc import selector

INVOICES = int(os.environ.get("BENCH_COLLECTIONS", "10000"))
FEE = Decimal("1.250000")
FEE_BASE_UNITS = 1_250_000
CAP_BASE_UNITS = 5_000_000
PERIOD_SECONDS = 30 * 24 * 3600
MINTED = 2 * FEE_BASE_UNITS
CONFIRMATIONS = 3
# Calls per JSON-RPC batch of the set-up.
BATCH = 500
SETUP_GAS = 200_000
# The base fee of every set-up block, and what the set-up pays. Full blocks raise the base fee
# by an eighth each, and anvil silently drops a waiting transaction priced below it.
SETUP_BASE_FEE = 10**9
TRANSFER_GAS = 100_000
POLL_SECONDS = 1.0
TIMEOUT_SECONDS = 3600.0
METADATA = ((MERCHANT_METADATA_KEY, MERCHANT),)

BALANCE_OF = selector("balanceOf(address)")
APPROVE = selector("approve(address,uint256)")
MINT = selector("mint(address,uint256)")
TRANSFER = selector("transfer(address,uint256)")
CREATE_MANDATE = selector("create_mandate(address,uint256,uint256,uint256)")

_MANDATE_COLUMNS = (
    "id",
    "merchant_id",
    "user_id",
    "subscription_id",
    "payer_wallet_address",
    "merchant_wallet_address",
    "contract_address",
    "cap",
    "period_seconds",
    "expire_time",
    "status",
    "transaction_hash",
    "create_time",
    "update_time",
)
# The polls name the figure's rows by what is theirs alone (the service, the mandates' ids, the
# only MANDATE settlements of a run), never by arrays of N ids: a poll of five counts, each
# probing N ids, took half a core from the services it watched.
_ACTIVE = """
    SELECT count(*) FROM settlement.mandates
    WHERE merchant_id = $1 AND id LIKE 'mdt_collect_%' AND status = 'ACTIVE'
"""
_UNDELIVERED = """
    SELECT (SELECT count(*) FROM settlement.outbox WHERE delivered_time IS NULL)
         + (SELECT count(*) FROM invoicing.outbox WHERE delivered_time IS NULL)
"""
_PAID = """
    SELECT count(*) FROM invoicing.invoices
    WHERE merchant_id = $1 AND service_id = $2 AND status = 'PAID'
"""
# Every 10 s, for the log.
_PROGRESS = """
    SELECT
        (SELECT count(*) FROM invoicing.invoices WHERE merchant_id = $1 AND service_id = $2),
        (SELECT count(*) FROM settlement.collections c
         JOIN settlement.mandates m ON m.id = c.mandate_id
         WHERE m.merchant_id = $1 AND m.id LIKE 'mdt_collect_%'),
        (SELECT count(*) FROM settlement.collections c
         JOIN settlement.mandates m ON m.id = c.mandate_id
         WHERE m.merchant_id = $1 AND m.id LIKE 'mdt_collect_%' AND c.status = 'SENT'),
        (SELECT count(*) FROM settlement.settlements
         WHERE merchant_id = $1 AND origin = 'MANDATE' AND status = 'CONFIRMED')
"""
# From the services' own timestamps: the first collection due, the last collection sent, the
# last settlement confirmed.
_TIMES = """
    SELECT
        (SELECT min(create_time) FROM settlement.collections
         WHERE merchant_id = $1 AND user_id = ANY($2::text[])),
        (SELECT max(o.send_time) FROM settlement.outgoing_transactions o
         JOIN settlement.settlements s ON s.transaction_hash = o.transaction_hash
         WHERE s.merchant_id = $1 AND s.user_id = ANY($2::text[]) AND s.origin = 'MANDATE'),
        (SELECT max(confirm_time) FROM settlement.settlements
         WHERE merchant_id = $1 AND user_id = ANY($2::text[]) AND origin = 'MANDATE')
"""
_COLLECTIONS = """
    SELECT c.reference_hash, c.status, s.status, s.amount_paid,
        (SELECT count(*) FROM settlement.collection_attempts a WHERE a.collection_id = c.id),
        (SELECT count(*) FROM settlement.collection_attempts a
         WHERE a.collection_id = c.id AND a.failure IS NULL)
    FROM settlement.collections c
    LEFT JOIN settlement.settlements s ON s.id = c.settlement_id
    WHERE c.merchant_id = $1 AND c.user_id = ANY($2::text[])
"""


def _log(message: str) -> None:
    print(f"  collections: {message}", file=sys.stderr, flush=True)


class Rpc:
    """anvil's JSON-RPC: one call, or many in batches of BATCH (answers in the calls' order)."""

    def __init__(self, url: str) -> None:
        self._client = httpx.AsyncClient(base_url=url, timeout=120, trust_env=False)

    async def __call__(self, method: str, *params: Any) -> Any:
        return (await self.batch([(method, list(params))]))[0]

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        results: list[Any] = []
        for start in range(0, len(calls), BATCH):
            body = [
                {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                for i, (method, params) in enumerate(calls[start : start + BATCH])
            ]
            answers = sorted((await self._client.post("", json=body)).json(), key=_id)
            failed = [a["error"] for a in answers if "error" in a]
            if failed:
                raise RuntimeError(f"{len(failed)} of {len(body)} calls failed: {failed[0]}")
            results += [a["result"] for a in answers]
        return results

    async def close(self) -> None:
        await self._client.aclose()


def _id(answer: dict[str, Any]) -> int:
    return int(answer["id"])


def _call(function: bytes, types: list[str], values: list[Any]) -> bytes:
    return function + encode(types, values)


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


async def _receipt(rpc: Rpc, tx_hash: str) -> dict[str, Any]:
    """The transaction's receipt once it is mined (by the chain's own interval)."""
    for _ in range(int(TIMEOUT_SECONDS / 0.02)):
        found = await rpc("eth_getTransactionReceipt", tx_hash)
        if found is not None:
            return dict(found)
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{tx_hash} was not mined")


async def _mined(rpc: Rpc, hashes: Sequence[str]) -> None:
    """Mines blocks, each at SETUP_BASE_FEE, until the node holds no transaction waiting;
    raises unless every one of `hashes` succeeded."""
    while True:
        waiting = await rpc("txpool_status")
        if int(waiting["pending"], 16) == 0 and int(waiting["queued"], 16) == 0:
            break
        await rpc("anvil_setNextBlockBaseFeePerGas", hex(SETUP_BASE_FEE))
        await rpc("evm_mine")
    receipts = await rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
    failed = [r for r in receipts if r is None or int(r["status"], 16) != 1]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(hashes)} set-up transactions failed")


async def _catalog(stack: Stack) -> tuple[str, str]:
    """A service and its monthly FIXED_RECURRING plan of FEE, through invoicing's API."""
    async with open_channel(stack.invoicing, stack.credentials) as channel:
        stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        service = await stub.CreateService(
            pb.CreateServiceRequest(service=pb.Service(name="collections bench")),
            metadata=METADATA,
        )
        plan = await stub.CreatePlan(
            pb.CreatePlanRequest(
                plan=pb.Plan(
                    service_id=service.id,
                    name="monthly fee",
                    pricing_type=pb.PRICING_TYPE_FIXED_RECURRING,
                    billing_interval=pb.BILLING_INTERVAL_MONTH,
                    interval_count=1,
                    amount=str(FEE),
                )
            ),
            metadata=METADATA,
        )
    return service.id, plan.id


async def _enrol(
    stack: Stack,
    rpc: Rpc,
    connection: asyncpg.Connection,
    subscriptions: Sequence[str],
    payers: Sequence[str],
    merchant_wallet: str,
) -> None:
    """Funds the payers, has each approve the contract and create its mandate, with the records
    CreateMandate would have stored COPYed into settlement first."""
    minter, token, contract = stack.anvil.accounts[0], stack.usdc_address, stack.mandates_address
    await rpc.batch([("anvil_setBalance", [p, hex(10**18)]) for p in payers])
    await rpc("evm_setAutomine", False)
    await rpc("anvil_autoImpersonateAccount", True)
    try:
        nonce = int(await rpc("eth_getTransactionCount", minter, "pending"), 16)
        mints = [
            _sent(minter, token, _call(MINT, ["address", "uint256"], [p, MINTED]), nonce + i)
            for i, p in enumerate(payers)
        ]
        approvals = [
            _sent(p, token, _call(APPROVE, ["address", "uint256"], [contract, 2 * CAP_BASE_UNITS]))
            for p in payers
        ]
        await _mined(rpc, await rpc.batch(mints) + await rpc.batch(approvals))
        expiry = int((await rpc("eth_getBlockByNumber", "latest", False))["timestamp"], 16)
        expiry += 365 * 24 * 3600
        terms = ["address", "uint256", "uint256", "uint256"]
        values = [merchant_wallet, CAP_BASE_UNITS, PERIOD_SECONDS, expiry]
        creations = await rpc.batch(
            [_sent(p, contract, _call(CREATE_MANDATE, terms, values)) for p in payers]
        )
        now = datetime.now(UTC)
        expire_time = datetime.fromtimestamp(expiry, UTC)
        cap = Decimal(CAP_BASE_UNITS) / 1_000_000
        await connection.copy_records_to_table(
            "mandates",
            schema_name="settlement",
            columns=_MANDATE_COLUMNS,
            records=[
                (
                    f"mdt_collect_{i:05d}",
                    MERCHANT,
                    subscriber_of(sid),
                    sid,
                    payer,
                    merchant_wallet,
                    contract,
                    cap,
                    PERIOD_SECONDS,
                    expire_time,
                    "PENDING",
                    tx_hash,
                    now,
                    now,
                )
                for i, (sid, payer, tx_hash) in enumerate(
                    zip(subscriptions, payers, creations, strict=True)
                )
            ],
        )
        await _mined(rpc, creations)
    finally:
        await rpc("anvil_autoImpersonateAccount", False)
    for _ in range(CONFIRMATIONS):
        await rpc("evm_mine")
    await rpc("evm_setAutomine", True)


def _sent(sender: str, to: str, data: bytes, nonce: int | None = None) -> tuple[str, list[Any]]:
    transaction = {
        "from": sender,
        "to": to,
        "data": _hex(data),
        "gas": hex(SETUP_GAS),
        "gasPrice": hex(2 * SETUP_BASE_FEE),
    }
    if nonce is not None:
        transaction["nonce"] = hex(nonce)
    return "eth_sendTransaction", [transaction]


async def _until(
    connection: asyncpg.Connection, what: str, target: int, query: str, *args: Any
) -> None:
    """Polls until the query answers `target`; raises after TIMEOUT_SECONDS."""
    began = time.perf_counter()
    reported = began
    while True:
        found = int(await connection.fetchval(query, *args))
        if found == target:
            return
        if time.perf_counter() - began > TIMEOUT_SECONDS:
            raise TimeoutError(f"{what}: {found:,} after {TIMEOUT_SECONDS:.0f} s")
        if time.perf_counter() - reported >= 10:
            reported = time.perf_counter()
            _log(f"{what}: {found:,}")
        await asyncio.sleep(POLL_SECONDS)


async def _collected(connection: asyncpg.Connection, service: str) -> float:
    """Polls until every invoice of the service is PAID in invoicing; answers that moment (unix
    time)."""
    began = time.perf_counter()
    reported = began
    while True:
        paid = int(await connection.fetchval(_PAID, MERCHANT, service))
        if paid == INVOICES:
            return time.time()
        elapsed = time.perf_counter() - began
        if elapsed > TIMEOUT_SECONDS:
            raise TimeoutError(f"{paid:,} of {INVOICES:,} invoices PAID after {elapsed:.0f} s")
        if time.perf_counter() - reported >= 10:
            reported = time.perf_counter()
            row = await connection.fetchrow(_PROGRESS, MERCHANT, service)
            assert row is not None
            invoiced, scheduled, sent, confirmed = row
            _log(
                f"{elapsed:.0f} s: {invoiced:,} invoiced, {scheduled:,} collections, {sent:,}"
                f" sent, {confirmed:,} confirmed, {paid:,} PAID"
            )
        await asyncio.sleep(POLL_SECONDS)


async def _check(
    stack: Stack,
    rpc: Rpc,
    connection: asyncpg.Connection,
    users: list[str],
    payers: Sequence[str],
    merchant_wallet: str,
    from_block: int,
) -> None:
    rows = await connection.fetch(_COLLECTIONS, MERCHANT, users)
    references = {row[0] for row in rows}
    expected = ("SENT", "CONFIRMED", FEE, 1, 1)
    wrong = [tuple(row) for row in rows if tuple(row)[1:] != expected]
    if len(rows) != INVOICES or len(references) != INVOICES or wrong:
        raise RuntimeError(
            f"{len(rows)} collections, {len(references)} references; not as expected: {wrong[:3]}"
        )
    mandates = Mandates.at(stack.anvil.url, stack.mandates_address)
    try:
        events = [e for e in await mandates.events(from_block) if e.name == "Collected"]
    finally:
        await mandates.close()
    payer_set = set(payers)
    collected = {"0x" + bytes(e.args["reference"]).hex() for e in events}
    strays = [
        e
        for e in events
        if e.args["payer"] not in payer_set
        or e.args["merchant"] != merchant_wallet
        or e.args["amount"] != FEE_BASE_UNITS
    ]
    if len(events) != INVOICES or collected != references or strays:
        raise RuntimeError(
            f"{len(events)} Collected events, {len(collected & references)} of the collections'"
            f" references, {len(strays)} of another payer, merchant or amount"
        )
    token = stack.usdc_address
    held = await rpc.batch(
        [("eth_call", [{"to": token, "data": _balance_of(p)}, "latest"]) for p in payers]
    )
    short = sum(1 for h in held if int(h, 16) != MINTED - FEE_BASE_UNITS)
    if short:
        raise RuntimeError(f"{short} payers do not hold exactly {MINTED - FEE_BASE_UNITS}")


def _balance_of(owner: str) -> str:
    return _hex(_call(BALANCE_OF, ["address"], [owner]))


async def _balance(rpc: Rpc, token: str, owner: str) -> int:
    return int(await rpc("eth_call", {"to": token, "data": _balance_of(owner)}, "latest"), 16)


async def _baseline(stack: Stack, rpc: Rpc) -> tuple[float, float]:
    """N plain transfers signed with sequential nonces and sent by one fresh account, one after
    the other; answers the seconds from the first signature to the last send, and to the last
    transfer's third confirmation."""
    sender = Account.create()
    receiver = Account.create().address
    await rpc("anvil_setBalance", sender.address, hex(10**20))
    minter, token = stack.anvil.accounts[0], stack.usdc_address
    data = _call(MINT, ["address", "uint256"], [sender.address, INVOICES * FEE_BASE_UNITS])
    await _receipt(
        rpc, await rpc("eth_sendTransaction", {"from": minter, "to": token, "data": _hex(data)})
    )
    transfer = _call(TRANSFER, ["address", "uint256"], [receiver, FEE_BASE_UNITS])
    gas_price = 2 * int(await rpc("eth_gasPrice"), 16)
    hashes = []
    started = time.perf_counter()
    for nonce in range(INVOICES):
        signed = sender.sign_transaction(
            {
                "chainId": CHAIN_ID,
                "nonce": nonce,
                "to": token,
                "data": transfer,
                "value": 0,
                "gas": TRANSFER_GAS,
                "gasPrice": gas_price,
            }
        )
        hashes.append(await rpc("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex()))
    sent = time.perf_counter() - started
    while True:
        receipt = await rpc("eth_getTransactionReceipt", hashes[-1])
        head = int(await rpc("eth_blockNumber"), 16)
        if receipt is not None and head - int(receipt["blockNumber"], 16) >= CONFIRMATIONS:
            break
        await asyncio.sleep(0.02)
    confirmed = time.perf_counter() - started
    receipts = await rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
    failed = sum(1 for r in receipts if r is None or int(r["status"], 16) != 1)
    received = await _balance(rpc, token, receiver)
    if failed or received != INVOICES * FEE_BASE_UNITS:
        raise RuntimeError(f"baseline: {failed} transfers failed, the receiver holds {received}")
    return sent, confirmed


async def measure(stack: Stack) -> list[Figure]:
    service, plan = await _catalog(stack)
    subscriptions = [f"sub_collect_{i:05d}" for i in range(INVOICES)]
    users = [subscriber_of(s) for s in subscriptions]
    payers = [str(to_checksum_address("0x" + secrets.token_hex(20))) for _ in range(INVOICES)]
    start = datetime.now(UTC) - timedelta(days=20)
    end = period_bounds(start, BillingInterval.MONTH, 1, 0)[1]
    rpc = Rpc(stack.anvil.url)
    connection = await asyncpg.connect(stack.dsn)
    try:
        merchant_wallet = str(
            await connection.fetchval(
                "SELECT wallet_address FROM settlement.payout_wallets WHERE merchant_id = $1",
                MERCHANT,
            )
        )
        async with connection.transaction():
            await copy_metering_replicas(connection, MERCHANT, service, subscriptions, start, end)
            await copy_invoicing_subscriptions(
                connection, MERCHANT, service, plan, subscriptions, start, end
            )
        began = time.perf_counter()
        await _enrol(stack, rpc, connection, subscriptions, payers, merchant_wallet)
        _log(f"{INVOICES:,} payers funded, approved and enrolled on chain in {_since(began)}")
        await _until(connection, "mandates ACTIVE", INVOICES, _ACTIVE, MERCHANT)
        await _until(connection, "outbox messages undelivered", 0, _UNDELIVERED)
        _log(f"every mandate ACTIVE and reported {_since(began)} after the set-up began")

        received_before = await _balance(rpc, stack.usdc_address, merchant_wallet)
        from_block = int(await rpc("eth_blockNumber"), 16) + 1
        await rpc("evm_setAutomine", False)
        await rpc("evm_setIntervalMining", 1)
        try:
            month_end = time.time()
            await connection.execute(
                "UPDATE invoicing.subscriptions SET test_clock_time = current_period_end"
                " + interval '2 hours' WHERE merchant_id = $1 AND id = ANY($2::text[])",
                MERCHANT,
                subscriptions,
            )
            paid_at = await _collected(connection, service)
            sent, confirmed = await _baseline(stack, rpc)
        finally:
            await rpc("evm_setIntervalMining", 0)
            await rpc("evm_setAutomine", True)
        times = await connection.fetchrow(_TIMES, MERCHANT, users)
        assert times is not None
        first_due, last_sent, last_confirmed = (t.timestamp() for t in times)
        await _check(stack, rpc, connection, users, payers, merchant_wallet, from_block)
        received = await _balance(rpc, stack.usdc_address, merchant_wallet) - received_before
        if received != INVOICES * FEE_BASE_UNITS:
            raise RuntimeError(f"the merchant received {received} base units")
    finally:
        await connection.close()
        await rpc.close()
    sending, paying = last_sent - first_due, last_confirmed - first_due
    _log(
        f"month end to the first collection due {first_due - month_end:.1f} s; "
        f"{INVOICES:,} collections sent in {sending:.1f} s, all CONFIRMED {paying:.1f} s and all"
        f" invoices PAID {paid_at - first_due:.1f} s after the first due; baseline: sent in"
        f" {sent:.1f} s, the last with 3 confirmations at {confirmed:.1f} s"
    )
    baseline = f"{INVOICES:,} plain USDC transfers signed and sent by one account"
    return [
        Figure(
            f"month-end collection of {INVOICES:,} invoices under mandates, a block a second:"
            " collections sent per second (first due to last sent)",
            INVOICES / sending,
            "collections/s",
            baseline,
            INVOICES / sent,
        ),
        Figure(
            f"month-end collection of {INVOICES:,} invoices: first due until all PAID"
            " (settlements of origin MANDATE CONFIRMED, 3 confirmations)",
            paying,
            "s",
            f"{baseline}, until all have 3 confirmations",
            confirmed,
        ),
    ]


def _since(began: float) -> str:
    return f"{time.perf_counter() - began:.1f} s"

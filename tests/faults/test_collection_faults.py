"""Auto-pay collections in the settlement process under faults: kill -9 after a collection is
stored signed and before the node has it, and after the node has it and before the process
recorded so; the node down during a collection pass; the collector out of gas. Each ends with
one collection on chain (the payer's and the merchant's balances exact, one Collected event of
the reference), the invoice PAID once, the payment posted once, and no failed attempt counted
against the subscriber. A reorg that drops the mined collection before it is final: the same
signed transaction is sent again (the manager holds it until it has the confirmations).

Settlement reaches anvil through tests/faults/chain_proxy.py, which holds the collection's
eth_sendRawTransaction at the point a test kills the process."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from eth_account import Account
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from web3.types import Nonce, TxParams

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.settlement.v1 import settlement_pb2 as pb
from billing.settlement.v1 import settlement_pb2_grpc
from devstack import mandate_signature
from devstack.postgres import free_port
from service_kit.proto_time import to_timestamp
from tests.conftest import COLLECTOR_ACCOUNT
from tests.faults.chain_proxy import ChainProxy, HeldSend, Hold
from tests.faults.conftest import TEST_TIMEOUT_SECONDS, FaultPlatform, new_merchant_id
from tests.faults.load import report
from tests.faults.waiting import eventually

CONFIRMATIONS = 3  # SETTLEMENT_REQUIRED_CONFIRMATIONS, by default
FUNDS, CAP, MONTH, YEAR = 5_000_000, 2_000_000, 30 * 24 * 3600, 365 * 24 * 3600
AMOUNT, BASE_UNITS = "1.25", 1_250_000
PAYER_GAS_WEI = 10**18

_COLLECTION = """
SELECT c.id, c.status, c.failures, c.reference_hash, c.settlement_id,
    o.transaction_hash, o.raw_transaction, o.status AS sent, o.send_attempts, o.last_error
FROM settlement.collections c
LEFT JOIN settlement.settlements s ON s.id = c.settlement_id
LEFT JOIN settlement.outgoing_transactions o ON o.transaction_hash = s.transaction_hash
WHERE c.merchant_id = $1 AND c.invoice_id = $2
"""
_ATTEMPTS = """
SELECT number, failure FROM settlement.collection_attempts WHERE collection_id = $1
ORDER BY number
"""
_SETTLEMENTS = """
SELECT status, origin, amount_paid FROM settlement.settlements WHERE merchant_id = $1
"""
_PAYMENT_POSTINGS = """
SELECT count(*) FROM settlement.journal_transactions WHERE merchant_id = $1 AND kind = 'payment'
"""
_RECEIVED = """
SELECT coalesce(sum(debit), 0) FROM settlement.journal_entries
WHERE merchant_id = $1 AND account = 'usdc_received'
"""
_COLLECTION_FAILURES_TOLD = """
SELECT count(*) FROM settlement.outbox
WHERE merchant_id = $1 AND topic = 'invoicing.collection_failed'
"""
_INVOICE = "SELECT status FROM invoicing.invoices WHERE merchant_id = $1 AND id = $2"
_PAID_WEBHOOKS = """
SELECT count(*) FROM invoicing.outbox
WHERE merchant_id = $1 AND payload->>'type' = 'invoice.paid' AND payload->'data'->>'id' = $2
"""
_DUNNED = "SELECT count(*) FROM invoicing.payment_attempts WHERE merchant_id = $1"
_SUBSCRIPTION = "SELECT status FROM invoicing.subscriptions WHERE merchant_id = $1 AND id = $2"


@pytest.fixture(scope="module")
async def proxy(fault_platform: FaultPlatform) -> AsyncIterator[ChainProxy]:
    """Settlement restarted to reach anvil through the proxy, with a metrics port of its own;
    restarted as it was afterwards."""
    process = fault_platform.settlement
    proxy = ChainProxy(fault_platform.anvil.url)
    proxy.start()
    before = dict(process.env)
    await asyncio.to_thread(process.stop)
    process.env["SETTLEMENT_CHAIN_RPC_URL"] = proxy.url
    process.env["SETTLEMENT_METRICS_PORT"] = str(free_port())
    try:
        await fault_platform.start(process)
        yield proxy
    finally:
        await asyncio.to_thread(process.stop)
        process.env = before
        proxy.stop()
        await fault_platform.start(process)


@dataclass(frozen=True)
class AutoPay:
    """A merchant's subscriber paying automatically: a fresh payer wallet holding FUNDS, its
    mandate (cap CAP a month) ACTIVE for the merchant's payout wallet."""

    merchant_id: str
    wallet: str
    plan_id: str
    subscription_id: str
    payer: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-merchant-id", self.merchant_id),)


async def _rpc(platform: FaultPlatform, method: str, *params: Any) -> Any:
    return await platform.usdc.w3.provider.make_request(method, list(params))


async def _subscribed(
    invoicing: invoicing_pb2_grpc.InvoicingServiceAsyncStub, merchant_id: str
) -> tuple[str, str]:
    """A USAGE_BASED plan and an ACTIVE subscription to it: (plan id, subscription id)."""
    metadata = (("x-merchant-id", merchant_id),)
    service = await invoicing.CreateService(
        ipb.CreateServiceRequest(service=ipb.Service(name="API")), metadata=metadata
    )
    plan = await invoicing.CreatePlan(
        ipb.CreatePlanRequest(
            plan=ipb.Plan(
                service_id=service.id,
                name="per call",
                pricing_type=ipb.PRICING_TYPE_USAGE_BASED,
                billing_interval=ipb.BILLING_INTERVAL_MONTH,
                amount="0.000010",
            )
        ),
        metadata=metadata,
    )
    session = await invoicing.CreateCheckoutSession(
        ipb.CreateCheckoutSessionRequest(
            session=ipb.CheckoutSession(
                plan_id=plan.id,
                user_id=f"usr_{merchant_id}",
                success_url="https://merchant.example/ok",
                cancel_url="https://merchant.example/cancel",
            )
        ),
        metadata=metadata,
    )
    session = await invoicing.CompleteCheckoutSession(
        ipb.CompleteCheckoutSessionRequest(id=session.id), metadata=metadata
    )
    return plan.id, session.subscription_id


async def _enrolled(
    platform: FaultPlatform,
    invoicing: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement: settlement_pb2_grpc.SettlementServiceAsyncStub,
    purpose: str,
) -> AutoPay:
    """The payer approves the contract and signs a mandate, settlement relays it from the
    collector and follows the contract until it is ACTIVE."""
    merchant_id = new_merchant_id(purpose)
    metadata = (("x-merchant-id", merchant_id),)
    wallet = await settlement.SetPayoutWallet(
        pb.SetPayoutWalletRequest(wallet_address="0x" + secrets.token_hex(20)), metadata=metadata
    )
    plan_id, subscription_id = await _subscribed(invoicing, merchant_id)
    usdc, mandates, w3 = platform.usdc, platform.mandates, platform.usdc.w3
    payer = Account.create()
    await _rpc(platform, "anvil_setBalance", payer.address, hex(PAYER_GAS_WEI))
    await usdc.mint(payer.address, FUNDS, platform.anvil.accounts[0])
    options: TxParams = {"from": payer.address, "nonce": Nonce(0), "gas": 100_000, "chainId": 31337}
    approve = await usdc.contract.functions.approve(mandates.address, CAP).build_transaction(
        options
    )
    sent = await w3.eth.send_raw_transaction(payer.sign_transaction(approve).raw_transaction)
    await w3.eth.wait_for_transaction_receipt(sent)

    now = max(await usdc.block_time(), int(datetime.now(UTC).timestamp()))
    message = {
        "payer": payer.address,
        "merchant": wallet.wallet_address,
        "cap": CAP,
        "period": MONTH,
        "expiry": now + YEAR,
        "nonce": await mandates.nonce(payer.address),
        "deadline": now + 3600,
    }
    signature = mandate_signature.sign(payer.key.hex(), 31337, mandates.address, message)
    await settlement.CreateMandate(
        pb.CreateMandateRequest(
            subscription_id=subscription_id,
            payer_wallet_address=payer.address,
            cap_base_units=CAP,
            period_seconds=MONTH,
            expire_time=to_timestamp(datetime.fromtimestamp(message["expiry"], UTC)),
            deadline=to_timestamp(datetime.fromtimestamp(message["deadline"], UTC)),
            signature=signature,
        ),
        metadata=metadata,
    )
    await usdc.mine(CONFIRMATIONS)

    async def status() -> int:
        found = await settlement.GetMandate(
            pb.GetMandateRequest(subscription_id=subscription_id), metadata=metadata
        )
        return int(found.status)

    await eventually(status, lambda found: found == pb.MANDATE_STATUS_ACTIVE)
    return AutoPay(merchant_id, wallet.wallet_address, plan_id, subscription_id, payer.address)


async def _invoice(invoicing: invoicing_pb2_grpc.InvoicingServiceAsyncStub, pay: AutoPay) -> str:
    """An invoice of AMOUNT, finalized: the ledger records it and schedules its collection."""
    invoice = await invoicing.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=pay.subscription_id, payment_plan_id=pay.plan_id, amount=AMOUNT
        ),
        metadata=pay.metadata,
    )
    return str(invoice.id)


async def _collection(
    db: asyncpg.Connection,
    pay: AutoPay,
    invoice_id: str,
    done: Callable[[asyncpg.Record], bool] = lambda row: True,
) -> asyncpg.Record:
    """The invoice's collection with its settlement's outgoing transaction, once it exists and
    is `done`."""

    async def fetch() -> asyncpg.Record | None:
        return await db.fetchrow(_COLLECTION, pay.merchant_id, invoice_id)

    found = await eventually(fetch, lambda row: row is not None and done(row))
    assert found is not None
    return found


async def _reached(held: HeldSend) -> None:
    async def reached() -> bool:
        return held.reached.is_set()

    await eventually(reached, bool, 0.01)


async def _mined(platform: FaultPlatform, transaction_hash: str) -> None:
    w3 = platform.usdc.w3

    async def receipt() -> bool:
        return await w3.eth.get_transaction_receipt(transaction_hash) is not None  # type: ignore[arg-type]

    async def found() -> bool:
        try:
            return await receipt()
        except Exception:  # web3's TransactionNotFound while it is not mined
            return False

    await eventually(found, bool)


async def _paid_after_confirmations(
    platform: FaultPlatform, db: asyncpg.Connection, pay: AutoPay, invoice_id: str
) -> None:
    """Once the collection is mined, the confirmations, then until the invoice is PAID; then a
    second more, by which a repeated payment would have been recorded."""
    collection = await _collection(
        db, pay, invoice_id, lambda row: row["transaction_hash"] is not None
    )
    await _mined(platform, collection["transaction_hash"])
    await platform.usdc.mine(CONFIRMATIONS)
    await eventually(lambda: db.fetchval(_INVOICE, pay.merchant_id, invoice_id), "PAID".__eq__)
    await asyncio.sleep(1)


async def _collected_events(platform: FaultPlatform, reference: str) -> int:
    events = await platform.mandates.events()
    wanted = bytes.fromhex(reference.removeprefix("0x"))
    return sum(e.name == "Collected" and bytes(e.args["reference"]) == wanted for e in events)


async def _assert_collected_once(
    platform: FaultPlatform, db: asyncpg.Connection, pay: AutoPay, invoice_id: str
) -> asyncpg.Record:
    """One collection on chain, the invoice PAID once, the payment posted once, no failed
    attempt and no dunning. Answers the collection."""
    collection = await _collection(db, pay, invoice_id)
    assert await platform.usdc.balance(pay.payer) == FUNDS - BASE_UNITS
    assert await platform.usdc.balance(pay.wallet) == BASE_UNITS
    assert await platform.mandates.available(pay.payer, pay.wallet) == CAP - BASE_UNITS
    assert await _collected_events(platform, collection["reference_hash"]) == 1
    assert (collection["status"], collection["failures"], collection["sent"]) == (
        "SENT",
        0,
        "MINED",
    )
    assert [tuple(r) for r in await db.fetch(_ATTEMPTS, collection["id"])] == [(1, None)]
    assert [tuple(r) for r in await db.fetch(_SETTLEMENTS, pay.merchant_id)] == [
        ("CONFIRMED", "MANDATE", Decimal(AMOUNT))
    ]
    assert await db.fetchval(_INVOICE, pay.merchant_id, invoice_id) == "PAID"
    assert await db.fetchval(_PAID_WEBHOOKS, pay.merchant_id, invoice_id) == 1
    assert await db.fetchval(_PAYMENT_POSTINGS, pay.merchant_id) == 1
    assert await db.fetchval(_RECEIVED, pay.merchant_id) == Decimal(AMOUNT)
    assert await db.fetchval(_COLLECTION_FAILURES_TOLD, pay.merchant_id) == 0
    assert await db.fetchval(_DUNNED, pay.merchant_id) == 0
    assert await db.fetchval(_SUBSCRIPTION, pay.merchant_id, pay.subscription_id) == "ACTIVE"
    return collection


async def _collector_nonce(platform: FaultPlatform) -> int:
    collector = platform.anvil.accounts[COLLECTOR_ACCOUNT]
    return int(await platform.usdc.w3.eth.get_transaction_count(collector))  # type: ignore[arg-type]


async def test_killed_after_storing_the_signed_collection_and_before_sending_it(
    fault_platform: FaultPlatform,
    proxy: ChainProxy,
    invoicing_rpc: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement_rpc: settlement_pb2_grpc.SettlementServiceAsyncStub,
    db: asyncpg.Connection,
) -> None:
    """The collection's eth_sendRawTransaction is held before it reaches the node and the
    process is killed there: the restarted one sends the stored bytes, collected once."""
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        pay = await _enrolled(fault_platform, invoicing_rpc, settlement_rpc, "col_kill_signed")
        nonce = await _collector_nonce(fault_platform)
        held = proxy.hold_next_send(Hold.BEFORE_NODE, fault_platform.settlement.kill)
        invoice_id = await _invoice(invoicing_rpc, pay)
        await _reached(held)
        assert not fault_platform.settlement.running()

        stored = await _collection(db, pay, invoice_id)
        assert (stored["status"], stored["sent"], stored["send_attempts"]) == ("SENT", "SIGNED", 0)
        assert "0x" + bytes(stored["raw_transaction"]).hex() == held.raw
        assert await _collected_events(fault_platform, stored["reference_hash"]) == 0
        assert await _collector_nonce(fault_platform) == nonce

        await fault_platform.start(fault_platform.settlement)
        await _paid_after_confirmations(fault_platform, db, pay, invoice_id)
        collection = await _assert_collected_once(fault_platform, db, pay, invoice_id)
        assert collection["transaction_hash"] == stored["transaction_hash"]
        assert await _collector_nonce(fault_platform) == nonce + 1
        report(
            "settlement kill -9 between storing a signed collection and sending it",
            {"send_attempts_after_restart": collection["send_attempts"], "collected": 1},
        )


async def test_killed_after_the_node_took_the_collection_and_before_it_was_recorded(
    fault_platform: FaultPlatform,
    proxy: ChainProxy,
    invoicing_rpc: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement_rpc: settlement_pb2_grpc.SettlementServiceAsyncStub,
    db: asyncpg.Connection,
) -> None:
    """The node mines the collection, the process is killed before the answer reaches it (the
    send unrecorded, nothing confirmed): the restarted one finds it mined and confirms it, with
    no second transaction."""
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        pay = await _enrolled(fault_platform, invoicing_rpc, settlement_rpc, "col_kill_sent")
        nonce = await _collector_nonce(fault_platform)
        held = proxy.hold_next_send(Hold.AFTER_NODE, fault_platform.settlement.kill)
        invoice_id = await _invoice(invoicing_rpc, pay)
        await _reached(held)
        assert not fault_platform.settlement.running()

        stored = await _collection(db, pay, invoice_id)
        assert (stored["status"], stored["sent"], stored["send_attempts"]) == ("SENT", "SIGNED", 0)
        assert await _collected_events(fault_platform, stored["reference_hash"]) == 1
        assert [tuple(r) for r in await db.fetch(_SETTLEMENTS, pay.merchant_id)] == [
            ("PENDING", "MANDATE", None)
        ]

        await fault_platform.start(fault_platform.settlement)
        await _paid_after_confirmations(fault_platform, db, pay, invoice_id)
        collection = await _assert_collected_once(fault_platform, db, pay, invoice_id)
        assert collection["transaction_hash"] == stored["transaction_hash"]
        assert await _collector_nonce(fault_platform) == nonce + 1


def _unreachable_passes(platform: FaultPlatform, collection_id: str) -> int:
    lines = platform.settlement.log_path.read_text(errors="replace").splitlines()
    return sum('"collection.chain_unreachable"' in line and collection_id in line for line in lines)


async def test_the_node_down_during_a_collection_pass_fails_nothing_and_collects_once_back(
    fault_platform: FaultPlatform,
    proxy: ChainProxy,
    invoicing_rpc: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement_rpc: settlement_pb2_grpc.SettlementServiceAsyncStub,
    db: asyncpg.Connection,
) -> None:
    """The invoice is finalized while anvil is down: passes find the node unreachable and
    record nothing (no attempt, no dunning); once it is back the collection goes through."""
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        pay = await _enrolled(fault_platform, invoicing_rpc, settlement_rpc, "col_node")
        # SIGTERM: anvil writes its chain to the state file on the way out.
        await asyncio.to_thread(fault_platform.anvil.stop)
        invoice_id = await _invoice(invoicing_rpc, pay)
        due = await _collection(db, pay, invoice_id)
        await eventually(
            lambda: asyncio.to_thread(_unreachable_passes, fault_platform, due["id"]),
            lambda passes: passes >= 3,
        )
        while_down = await _collection(db, pay, invoice_id)
        assert (while_down["status"], while_down["failures"], while_down["settlement_id"]) == (
            "DUE",
            0,
            None,
        )
        assert await db.fetch(_ATTEMPTS, due["id"]) == []
        assert await db.fetchval(_COLLECTION_FAILURES_TOLD, pay.merchant_id) == 0
        passes_while_down = _unreachable_passes(fault_platform, due["id"])

        await asyncio.to_thread(fault_platform.anvil.start)
        await _paid_after_confirmations(fault_platform, db, pay, invoice_id)
        await _assert_collected_once(fault_platform, db, pay, invoice_id)
        report(
            "chain node down during a collection pass",
            {"passes_while_down": passes_while_down, "attempts_failed": 0, "collected": 1},
        )


async def _collector_readiness(platform: FaultPlatform) -> int:
    async with platform.channel(platform.settlement) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # its typing stubs lack Check
        reply = await stub.Check(health_pb2.HealthCheckRequest(service="collector"), timeout=5)
    return int(reply.status)


async def _collector_gauges(platform: FaultPlatform) -> tuple[float, float]:
    """settlement_collector_balance_wei and settlement_collector_low_gas, as scraped."""
    port = platform.settlement.env["SETTLEMENT_METRICS_PORT"]
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return samples["settlement_collector_balance_wei"], samples["settlement_collector_low_gas"]


async def test_the_collector_out_of_gas_is_not_ready_and_its_collections_wait(
    fault_platform: FaultPlatform,
    proxy: ChainProxy,
    invoicing_rpc: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement_rpc: settlement_pb2_grpc.SettlementServiceAsyncStub,
    db: asyncpg.Connection,
) -> None:
    """With account 7 drained, readiness reports the collector NOT_SERVING (and the metrics
    say why); the collection is signed and kept, sent again and again without counting a failed
    attempt; after a top-up it is collected once."""
    collector = fault_platform.anvil.accounts[COLLECTOR_ACCOUNT]
    w3 = fault_platform.usdc.w3
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        pay = await _enrolled(fault_platform, invoicing_rpc, settlement_rpc, "col_gas")
        assert await _collector_readiness(fault_platform) == health_pb2.HealthCheckResponse.SERVING
        gas = int(await w3.eth.get_balance(collector))  # type: ignore[arg-type]
        await _rpc(fault_platform, "anvil_setBalance", collector, "0x0")
        try:
            await eventually(
                lambda: _collector_readiness(fault_platform),
                lambda status: status == health_pb2.HealthCheckResponse.NOT_SERVING,
            )
            assert await _collector_gauges(fault_platform) == (0.0, 1.0)
            invoice_id = await _invoice(invoicing_rpc, pay)
            waiting = await _collection(
                db, pay, invoice_id, lambda row: (row["send_attempts"] or 0) >= 3
            )
            assert (waiting["status"], waiting["sent"], waiting["failures"]) == (
                "SENT",
                "SIGNED",
                0,
            )
            assert "insufficient funds" in waiting["last_error"].lower()
            assert [tuple(r) for r in await db.fetch(_ATTEMPTS, waiting["id"])] == [(1, None)]
            assert await db.fetchval(_COLLECTION_FAILURES_TOLD, pay.merchant_id) == 0
            assert await _collected_events(fault_platform, waiting["reference_hash"]) == 0
            assert await fault_platform.usdc.balance(pay.payer) == FUNDS
        finally:
            await _rpc(fault_platform, "anvil_setBalance", collector, hex(gas))

        await eventually(
            lambda: _collector_readiness(fault_platform),
            lambda status: status == health_pb2.HealthCheckResponse.SERVING,
        )
        await _paid_after_confirmations(fault_platform, db, pay, invoice_id)
        collection = await _assert_collected_once(fault_platform, db, pay, invoice_id)
        assert collection["transaction_hash"] == waiting["transaction_hash"]
        report(
            "collector out of gas",
            {"sends_refused_while_empty": waiting["send_attempts"], "collected_after_top_up": 1},
        )


async def test_a_collection_dropped_by_a_reorg_is_sent_again_and_settles_once(
    fault_platform: FaultPlatform,
    proxy: ChainProxy,
    invoicing_rpc: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement_rpc: settlement_pb2_grpc.SettlementServiceAsyncStub,
    db: asyncpg.Connection,
) -> None:
    """The block holding the mined collection is reverted (evm_snapshot / evm_revert) before it
    has its confirmations: the same signed transaction is sent again and settles once."""
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        pay = await _enrolled(fault_platform, invoicing_rpc, settlement_rpc, "col_reorg")
        before = await fault_platform.usdc.snapshot()
        invoice_id = await _invoice(invoicing_rpc, pay)
        first = await _collection(
            db, pay, invoice_id, lambda row: row["transaction_hash"] is not None
        )
        await _mined(fault_platform, first["transaction_hash"])
        assert await _collected_events(fault_platform, first["reference_hash"]) == 1

        await fault_platform.usdc.revert(before)  # the block holding the collection is gone
        assert await _collected_events(fault_platform, first["reference_hash"]) == 0
        assert await fault_platform.usdc.balance(pay.wallet) == 0

        await _paid_after_confirmations(fault_platform, db, pay, invoice_id)
        collection = await _assert_collected_once(fault_platform, db, pay, invoice_id)
        assert collection["transaction_hash"] == first["transaction_hash"]

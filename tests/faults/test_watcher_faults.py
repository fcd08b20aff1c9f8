"""The chain watcher in the settlement process under faults: kill -9 in the middle of reading a
backlog of payments resumes from the cursor without missing or repeating one; the node down and
back makes it wait, then catch up. Payments are EIP-3009 authorizations the payer's wallet signs
and another account submits (no relayer of ours), several to a block."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import asyncpg

from bench.figures.watcher import Bound, pay_by_authorization
from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.settlement.v1 import settlement_pb2 as pb
from billing.settlement.v1 import settlement_pb2_grpc
from tests.faults.conftest import TEST_TIMEOUT_SECONDS, FaultPlatform, new_merchant_id
from tests.faults.load import report
from tests.faults.waiting import eventually

AMOUNT, BASE_UNITS = "0.5", 500_000
CONFIRMATIONS = 3  # SETTLEMENT_REQUIRED_CONFIRMATIONS, by default
PAYER, SUBMITTER = 4, 5
POLL_SECONDS = 0.01

_WATCHED = """
SELECT count(*) FILTER (WHERE status = 'CONFIRMED') AS confirmed, count(*) AS total,
    count(DISTINCT invoice_id) AS invoices
FROM settlement.settlements WHERE merchant_id = $1 AND origin = 'WATCHER'
"""
_PAYMENT_POSTINGS = """
SELECT count(*) FROM settlement.journal_transactions WHERE merchant_id = $1 AND kind = 'payment'
"""
_RECEIVED = """
SELECT coalesce(sum(debit), 0) FROM settlement.journal_entries
WHERE merchant_id = $1 AND account = 'usdc_received'
"""
_PAID = "SELECT count(*) FROM invoicing.invoices WHERE merchant_id = $1 AND status = 'PAID'"
_CREDITS = "SELECT count(*) FROM settlement.credits WHERE merchant_id = $1"
_RECOGNISED = "SELECT coalesce(sum(payments_recognised), 0) FROM settlement.watcher_cursors"


async def _payable_invoices(
    invoicing: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement: settlement_pb2_grpc.SettlementServiceAsyncStub,
    merchant_id: str,
    count: int,
) -> list[pb.PaymentRequest]:
    """A merchant with a payout wallet and one subscriber with `count` open invoices of AMOUNT;
    the payment request of each."""
    metadata = (("x-merchant-id", merchant_id),)
    await settlement.SetPayoutWallet(
        pb.SetPayoutWalletRequest(wallet_address="0x" + secrets.token_hex(20)),
        metadata=metadata,
    )
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
    requests = []
    for _ in range(count):
        invoice = await invoicing.CreateInvoice(
            ipb.CreateInvoiceRequest(
                subscription_id=session.subscription_id, payment_plan_id=plan.id, amount=AMOUNT
            ),
            metadata=metadata,
        )
        requests.append(
            await settlement.GetPaymentRequest(
                pb.GetPaymentRequestRequest(invoice_id=invoice.id), metadata=metadata
            )
        )
    return requests


async def _pay(platform: FaultPlatform, requests: list[pb.PaymentRequest], per_block: int) -> None:
    """The payer's authorizations of every request, mined `per_block` to a block, then the
    confirmations."""
    usdc, accounts = platform.usdc, platform.anvil.accounts
    await usdc.mint(accounts[PAYER], BASE_UNITS * len(requests), accounts[0])
    payments = [Bound(r.reference_hash, r.payee_wallet_address, BASE_UNITS) for r in requests]
    await pay_by_authorization(usdc, accounts[PAYER], accounts[SUBMITTER], payments, per_block)
    await usdc.mine(CONFIRMATIONS)


@asynccontextmanager
async def _watcher_setting(platform: FaultPlatform, name: str, value: str) -> AsyncIterator[None]:
    """The settlement process restarted with one setting changed, and restarted as it was on
    the way out."""
    process = platform.settlement
    before = process.env.get(name)
    await asyncio.to_thread(process.stop)
    process.env[name] = value
    try:
        yield
    finally:
        if process.running():
            await asyncio.to_thread(process.stop)
        if before is None:
            process.env.pop(name)
        else:
            process.env[name] = before
        await platform.start(process)


async def _watched(db: asyncpg.Connection, merchant_id: str) -> tuple[int, int, int]:
    """The merchant's WATCHER settlements: (CONFIRMED, all, distinct invoices)."""
    row = await db.fetchrow(_WATCHED, merchant_id)
    assert row is not None
    return int(row["confirmed"]), int(row["total"]), int(row["invoices"])


async def _all_settled(db: asyncpg.Connection, merchant_id: str, count: int) -> None:
    """Until `count` are CONFIRMED and their invoices PAID, then a second more: a watcher that
    repeated anything has done so by then."""
    await eventually(lambda: _watched(db, merchant_id), lambda found: found[0] >= count)
    await eventually(lambda: db.fetchval(_PAID, merchant_id), lambda paid: paid >= count)
    await asyncio.sleep(1)


async def test_settlement_killed_mid_scan_recognises_every_payment_once(
    fault_platform: FaultPlatform,
    invoicing_rpc: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement_rpc: settlement_pb2_grpc.SettlementServiceAsyncStub,
    db: asyncpg.Connection,
) -> None:
    """A backlog of PAYMENTS payments, 5 to a block, read one block per range: the process is
    killed once a quarter of them are recognised, and started again."""
    payments = 200
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS * 2):
        merchant_id = new_merchant_id("watch_kill")
        requests = await _payable_invoices(invoicing_rpc, settlement_rpc, merchant_id, payments)
        recognised_before = await db.fetchval(_RECOGNISED)
        async with _watcher_setting(fault_platform, "SETTLEMENT_WATCHER_MAX_BLOCKS", "1"):
            await _pay(fault_platform, requests, per_block=5)
            await fault_platform.start(fault_platform.settlement)

            await eventually(
                lambda: _watched(db, merchant_id),
                lambda found: found[1] >= payments // 4,
                POLL_SECONDS,
            )
            fault_platform.settlement.kill()
            at_kill = (await _watched(db, merchant_id))[1]
        # Started again with the default ranges, from the cursor the killed process committed.
        await _all_settled(db, merchant_id, payments)
        confirmed, total, invoices = await _watched(db, merchant_id)
        postings = await db.fetchval(_PAYMENT_POSTINGS, merchant_id)
        received = await db.fetchval(_RECEIVED, merchant_id)
        report(
            "settlement kill -9 while the watcher reads a backlog",
            {
                "payments": payments,
                "recognised_at_kill": at_kill,
                "settlements_after_restart": total,
                "confirmed": confirmed,
                "payment_postings": postings,
            },
        )
        assert payments // 4 <= at_kill < payments
        assert (confirmed, total, invoices) == (payments, payments, payments)
        assert postings == payments
        assert received == Decimal(AMOUNT) * payments
        assert await db.fetchval(_PAID, merchant_id) == payments
        assert await db.fetchval(_CREDITS, merchant_id) == 0
        assert await db.fetchval(_RECOGNISED) - recognised_before == payments


def _failed_passes(platform: FaultPlatform) -> int:
    lines = platform.settlement.log_path.read_text(errors="replace").splitlines()
    return sum('"watcher.pass_failed"' in line for line in lines)


async def test_the_watcher_waits_for_the_node_and_catches_up(
    fault_platform: FaultPlatform,
    invoicing_rpc: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement_rpc: settlement_pb2_grpc.SettlementServiceAsyncStub,
    db: asyncpg.Connection,
) -> None:
    """Payments mined while the settlement process is frozen (SIGSTOP), then the node goes down
    before the watcher reads them: it fails its passes, records nothing, and once the node is
    back it settles each payment once."""
    payments = 6
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        merchant_id = new_merchant_id("watch_node")
        requests = await _payable_invoices(invoicing_rpc, settlement_rpc, merchant_id, payments)
        fault_platform.settlement.pause()
        try:
            await _pay(fault_platform, requests, per_block=2)
            failed_before = _failed_passes(fault_platform)
            # SIGTERM: anvil writes its chain to the state file on the way out.
            await asyncio.to_thread(fault_platform.anvil.stop)
        finally:
            fault_platform.settlement.resume()
        await eventually(
            lambda: asyncio.to_thread(_failed_passes, fault_platform),
            lambda failed: failed >= failed_before + 3,
        )
        while_down = await _watched(db, merchant_id)

        await asyncio.to_thread(fault_platform.anvil.start)
        await _all_settled(db, merchant_id, payments)
        confirmed, total, invoices = await _watched(db, merchant_id)
        report(
            "chain node down before the watcher read the payments",
            {
                "payments": payments,
                "failed_passes_while_down": _failed_passes(fault_platform) - failed_before,
                "recognised_while_down": while_down[1],
                "confirmed_after_restart": confirmed,
            },
        )
        assert while_down == (0, 0, 0)
        assert (confirmed, total, invoices) == (payments, payments, payments)
        assert await db.fetchval(_PAYMENT_POSTINGS, merchant_id) == payments
        assert await db.fetchval(_PAID, merchant_id) == payments
        assert await db.fetchval(_CREDITS, merchant_id) == 0

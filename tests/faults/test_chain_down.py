"""The chain node (anvil) down while settlements are pending: they stay PENDING while the
verifier keeps retrying, and confirm once the node is back with its chain.

A transfer removed by a reorg (evm_snapshot / evm_revert) before enough confirmations is never
confirmed: tests/settlement/test_verification_failures.py
(test_a_transaction_dropped_by_a_reorg_is_never_confirmed) covers it against the same verifier.
"""

from __future__ import annotations

import asyncio
from functools import partial

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.settlement.v1 import settlement_pb2 as pb
from billing.settlement.v1 import settlement_pb2_grpc
from tests.faults.conftest import TEST_TIMEOUT_SECONDS, FaultPlatform, new_merchant_id
from tests.faults.load import report
from tests.faults.waiting import eventually

INVOICES = 3
AMOUNT, BASE_UNITS = "2.5", 2_500_000
CONFIRMATIONS = 3  # SETTLEMENT_REQUIRED_CONFIRMATIONS, by default
RETRIES_WHILE_DOWN = 3


async def _open_invoice(
    stub: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    metadata: tuple[tuple[str, str], ...],
    user_id: str,
) -> ipb.Invoice:
    service = await stub.CreateService(
        ipb.CreateServiceRequest(service=ipb.Service(name="API")), metadata=metadata
    )
    plan = await stub.CreatePlan(
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
    session = await stub.CreateCheckoutSession(
        ipb.CreateCheckoutSessionRequest(
            session=ipb.CheckoutSession(
                plan_id=plan.id,
                user_id=user_id,
                success_url="https://merchant.example/ok",
                cancel_url="https://merchant.example/cancel",
            )
        ),
        metadata=metadata,
    )
    session = await stub.CompleteCheckoutSession(
        ipb.CompleteCheckoutSessionRequest(id=session.id), metadata=metadata
    )
    return await stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=session.subscription_id, payment_plan_id=plan.id, amount=AMOUNT
        ),
        metadata=metadata,
    )


def _unreachable_checks(platform: FaultPlatform, settlement_id: str) -> int:
    """How often the verifier has found the chain unreachable for this settlement (its log)."""
    lines = platform.settlement.log_path.read_text(errors="replace").splitlines()
    return sum('"chain.unreachable"' in line and settlement_id in line for line in lines)


async def test_settlements_wait_for_the_chain_and_confirm_when_it_is_back(
    fault_platform: FaultPlatform,
    invoicing_rpc: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    settlement_rpc: settlement_pb2_grpc.SettlementServiceAsyncStub,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        merchant_id = new_merchant_id("chain_down")
        metadata = fault_platform.metadata(merchant_id)
        usdc, (minter, payer, wallet) = fault_platform.usdc, fault_platform.anvil.accounts[:3]
        await settlement_rpc.SetPayoutWallet(
            pb.SetPayoutWalletRequest(wallet_address=wallet), metadata=metadata
        )
        invoices = [await _open_invoice(invoicing_rpc, metadata, payer) for _ in range(INVOICES)]
        transfers = []
        for _ in invoices:
            await usdc.mint(payer, BASE_UNITS, minter)
            transfers.append(await usdc.transfer(payer, wallet, BASE_UNITS))

        # SIGTERM: anvil writes its chain to the state file on the way out.
        await asyncio.to_thread(fault_platform.anvil.stop)
        settlements = [
            await settlement_rpc.SubmitSettlement(
                pb.SubmitSettlementRequest(
                    invoice_id=invoice.id,
                    reference_hash="0x" + "5e" * 32,
                    transaction_hash=transfer,
                    payer_wallet_address=payer,
                ),
                metadata=metadata,
            )
            for invoice, transfer in zip(invoices, transfers, strict=True)
        ]

        async def fewest_checks() -> int:
            return min(_unreachable_checks(fault_platform, s.id) for s in settlements)

        await eventually(fewest_checks, lambda checks: checks >= RETRIES_WHILE_DOWN)
        while_down = [
            await settlement_rpc.GetSettlement(pb.GetSettlementRequest(id=s.id), metadata=metadata)
            for s in settlements
        ]
        checks_while_down = [_unreachable_checks(fault_platform, s.id) for s in settlements]

        await asyncio.to_thread(fault_platform.anvil.start)
        await usdc.mine(CONFIRMATIONS)
        confirmed = [
            await eventually(
                partial(
                    settlement_rpc.GetSettlement,
                    pb.GetSettlementRequest(id=settlement.id),
                    metadata=metadata,
                ),
                lambda found: found.status != pb.SETTLEMENT_STATUS_PENDING,
            )
            for settlement in settlements
        ]
        paid = [
            await eventually(
                partial(
                    invoicing_rpc.GetInvoice,
                    ipb.GetInvoiceRequest(id=invoice.id),
                    metadata=metadata,
                ),
                lambda found: found.status != ipb.INVOICE_STATUS_OPEN,
            )
            for invoice in invoices
        ]

        report(
            "chain node down",
            {
                "settlements": INVOICES,
                "pending_while_down": sum(
                    s.status == pb.SETTLEMENT_STATUS_PENDING for s in while_down
                ),
                "verifier_retries_while_down": sum(checks_while_down),
                "confirmed_after_restart": sum(
                    s.status == pb.SETTLEMENT_STATUS_CONFIRMED for s in confirmed
                ),
            },
        )
        assert [s.status for s in settlements] == [pb.SETTLEMENT_STATUS_PENDING] * INVOICES
        assert [s.status for s in while_down] == [pb.SETTLEMENT_STATUS_PENDING] * INVOICES
        assert [s.failure_reason for s in while_down] == [pb.FAILURE_REASON_UNSPECIFIED] * INVOICES
        assert [(s.status, s.amount_paid, s.transaction_hash) for s in confirmed] == [
            (pb.SETTLEMENT_STATUS_CONFIRMED, "2.500000", transfer) for transfer in transfers
        ]
        assert all(s.confirmations >= CONFIRMATIONS for s in confirmed)
        assert [(i.status, i.settlement_id) for i in paid] == [
            (ipb.INVOICE_STATUS_PAID, s.id) for s in settlements
        ]

"""kill -9 of invoicing (it runs the period-close scheduler) in the middle of a period close of
hundreds of subscriptions; after a restart every subscription is invoiced exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from bench.figures.load import copy_invoicing_subscriptions, copy_metering_replicas
from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from invoicing_svc.domain.model import BillingInterval
from invoicing_svc.domain.periods import period_bounds
from tests.faults.conftest import TEST_TIMEOUT_SECONDS, FaultPlatform, new_merchant_id
from tests.faults.load import report
from tests.faults.waiting import eventually

SUBSCRIPTIONS = 1_000
FEE = Decimal("10.000000")
POLL_SECONDS = 0.02

_INVOICED = """
    SELECT count(*) FROM invoicing.invoices WHERE merchant_id = $1 AND period_start IS NOT NULL
"""


async def _fixed_fee_plan(
    stub: invoicing_pb2_grpc.InvoicingServiceAsyncStub, metadata: tuple[tuple[str, str], ...]
) -> pb.Plan:
    service = await stub.CreateService(
        pb.CreateServiceRequest(service=pb.Service(name="period close under fire")),
        metadata=metadata,
    )
    return await stub.CreatePlan(
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
        metadata=metadata,
    )


async def _due_subscriptions(
    db: asyncpg.Connection, merchant_id: str, plan: pb.Plan, ids: list[str]
) -> None:
    """Subscriptions whose first period ended days ago, written as the period-close benchmark
    writes them (bench/figures/load.py)."""
    anchor = datetime.now(UTC) - timedelta(days=33)
    end = period_bounds(anchor, BillingInterval.MONTH, 1, 0)[1]
    await copy_metering_replicas(db, merchant_id, plan.service_id, ids, anchor, end)
    await copy_invoicing_subscriptions(db, merchant_id, plan.service_id, plan.id, ids, anchor, end)


async def test_invoicing_killed_mid_period_close_invoices_each_subscription_once(
    fault_platform: FaultPlatform,
    invoicing_rpc: invoicing_pb2_grpc.InvoicingServiceAsyncStub,
    db: asyncpg.Connection,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        merchant_id = new_merchant_id("close")
        plan = await _fixed_fee_plan(invoicing_rpc, fault_platform.metadata(merchant_id))
        ids = [f"sub_{merchant_id}_{i:04d}" for i in range(SUBSCRIPTIONS)]
        first_pid = fault_platform.invoicing.pid
        await _due_subscriptions(db, merchant_id, plan, ids)

        async def invoiced() -> int:
            return int(await db.fetchval(_INVOICED, merchant_id))

        await eventually(invoiced, lambda count: count >= SUBSCRIPTIONS // 4, POLL_SECONDS)
        fault_platform.invoicing.kill()
        invoiced_at_kill = await invoiced()
        await fault_platform.start(fault_platform.invoicing)
        await eventually(invoiced, lambda count: count >= SUBSCRIPTIONS)
        await asyncio.sleep(1)  # a scheduler that invoiced anything twice has done so by now

        per_period = await db.fetch(
            """SELECT subscription_id, period_start, count(*) AS invoices, sum(amount) AS amount
            FROM invoicing.invoices WHERE merchant_id = $1 AND period_start IS NOT NULL
            GROUP BY 1, 2""",
            merchant_id,
        )
        rolled = await db.fetchval(
            """SELECT count(*) FROM invoicing.subscriptions
            WHERE merchant_id = $1 AND period_index = 1""",
            merchant_id,
        )
        report(
            "invoicing kill -9 during period close",
            {
                "subscriptions_due": SUBSCRIPTIONS,
                "invoiced_at_kill": invoiced_at_kill,
                "invoices_after_restart": sum(row["invoices"] for row in per_period),
                "invoiced_twice": sum(row["invoices"] > 1 for row in per_period),
                "not_invoiced": SUBSCRIPTIONS - len(per_period),
            },
        )
        assert fault_platform.invoicing.pid != first_pid
        assert SUBSCRIPTIONS // 4 <= invoiced_at_kill < SUBSCRIPTIONS
        assert await invoiced() == SUBSCRIPTIONS
        assert sorted(row["subscription_id"] for row in per_period) == ids
        assert {(row["invoices"], row["amount"]) for row in per_period} == {(1, FEE)}
        assert rolled == SUBSCRIPTIONS

"""Seed examples end to end through gRPC: checkout, usage into metering, period close, invoice."""

import asyncio
from datetime import timedelta

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.metering.v1 import metering_pb2 as mpb
from service_kit.clock import ManualClock
from tests.conftest import field_violation
from tests.invoicing.conftest import GRACE, Merchant

MONTH_AND_GRACE = timedelta(days=31) + GRACE


async def test_seed_000_ai_token_api_invoices_exactly_half_a_usdc(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await merchant.subscribe(plan)
    assert subscription.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    for _ in range(10):
        await merchant.record(subscription, "token_generated", "5000")

    rolled = await merchant.advance(subscription, MONTH_AND_GRACE)

    [invoice] = await merchant.invoices(subscription)
    assert invoice.amount == "0.500000"
    assert invoice.status == pb.INVOICE_STATUS_OPEN
    assert invoice.payment_plan_id == plan.id
    assert [(line.quantity, line.amount) for line in invoice.lines] == [("50000", "0.500000")]
    assert invoice.period_start == subscription.current_period_start
    assert invoice.period_end == subscription.current_period_end
    assert rolled.current_period_start == subscription.current_period_end
    assert rolled.current_period_end.ToDatetime().isoformat() == "2027-01-26T10:30:00"


async def test_seed_002_package_price_of_four_cents_per_thousand_tokens(merchant: Merchant) -> None:
    plan = await merchant.plan(
        pricing_type=pb.PRICING_TYPE_USAGE_BASED,
        charges=[
            pb.UsageCharge(
                event_key="tokens",
                model=pb.CHARGE_MODEL_PACKAGE,
                unit_price="0.04",
                package_size="1000",
            )
        ],
    )
    subscription = await merchant.subscribe(plan)
    await merchant.record(subscription, "tokens", "2500000")
    await merchant.record(subscription, "tokens", "1")

    await merchant.advance(subscription, MONTH_AND_GRACE)

    [invoice] = await merchant.invoices(subscription)
    # 2,500,001 tokens start 2,501 packages.
    assert invoice.amount == "100.040000"
    assert [(line.event_key, line.quantity) for line in invoice.lines] == [("tokens", "2500001")]


async def test_hybrid_plan_bills_base_fee_and_graduated_overage(merchant: Merchant) -> None:
    plan = await merchant.plan(
        pricing_type=pb.PRICING_TYPE_HYBRID,
        amount="29.00",
        charges=[
            pb.UsageCharge(
                event_key="api_call",
                model=pb.CHARGE_MODEL_GRADUATED,
                included_quantity="10000",
                tiers=[pb.Tier(unit_price="0.001")],
            )
        ],
    )
    session = await merchant.checkout(plan)
    assert session.amount_due == "29.000000"
    subscription = await merchant.subscribe(plan)
    for _ in range(2):
        await merchant.record(subscription, "api_call", "12345")
        subscription = await merchant.advance(subscription, MONTH_AND_GRACE)

    first, second = await merchant.invoices(subscription)
    # The first period's base fee was paid at checkout.
    assert first.amount == "2.345000"
    assert [line.amount for line in second.lines] == ["29.000000", "2.345000"]
    assert second.amount == "31.345000"


async def test_three_periods_are_invoiced_once_each_with_concurrent_schedulers(
    merchant: Merchant,
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.5")
    subscription = await merchant.subscribe(plan)
    for tokens in ("1", "2"):
        await merchant.record(subscription, "token_generated", tokens)
        subscription = await merchant.advance(subscription, MONTH_AND_GRACE)
    await merchant.record(subscription, "token_generated", "3")

    # The last close races two scheduler passes of this and another replica.
    await asyncio.gather(
        merchant.advance(subscription, MONTH_AND_GRACE),
        merchant.close_periods(),
        merchant.close_periods(),
    )
    await asyncio.gather(merchant.close_periods(), merchant.close_periods())

    invoices = await merchant.invoices(subscription)
    assert [invoice.amount for invoice in invoices] == ["0.500000", "1.000000", "1.500000"]
    assert len({invoice.period_start.ToDatetime() for invoice in invoices}) == 3


async def test_cancel_mid_period_bills_usage_and_prorated_fee(merchant: Merchant) -> None:
    plan = await merchant.plan(
        pricing_type=pb.PRICING_TYPE_HYBRID,
        amount="30",
        charges=[
            pb.UsageCharge(
                event_key="api_call",
                model=pb.CHARGE_MODEL_PER_UNIT,
                unit_price="0.001",
                included_quantity="10000",
            )
        ],
    )
    subscription = await merchant.subscribe(plan)
    subscription = await merchant.advance(subscription, MONTH_AND_GRACE)
    # Period 2 runs 2026-12-26 10:30 to 2027-01-26 10:30: 31 days. The first advance ended 1 day
    # 1 hour into it; cancel 10 days 5 hours in.
    subscription = await merchant.advance(subscription, timedelta(days=9, hours=4))
    await merchant.record(subscription, "api_call", "12345")

    canceled = await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
    )
    await merchant.relay()

    assert canceled.status == pb.SUBSCRIPTION_STATUS_CANCELED
    first, final = await merchant.invoices(subscription)
    assert (first.amount, first.status) == ("0.000000", pb.INVOICE_STATUS_PAID)
    # 11 started days of 31: 30 x 11/31 = 10.645161290... -> 10.645161; usage 2,345 x 0.001.
    assert [line.amount for line in final.lines] == ["10.645161", "2.345000"]
    assert final.amount == "12.990161"
    assert final.period_end == canceled.cancel_time
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.record(subscription, "api_call", "1")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_cancel_at_period_end_ends_at_the_close(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_FIXED_RECURRING, amount="9.99")
    subscription = await merchant.subscribe(plan)
    pending = await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=subscription.id, at_period_end=True),
        metadata=merchant.metadata,
    )
    assert (pending.status, pending.cancel_at_period_end) == (pb.SUBSCRIPTION_STATUS_ACTIVE, True)

    ended = await merchant.advance(subscription, MONTH_AND_GRACE)

    assert ended.status == pb.SUBSCRIPTION_STATUS_CANCELED
    assert ended.cancel_time == subscription.current_period_end
    [invoice] = await merchant.invoices(subscription)
    assert invoice.amount == "0.000000"  # the only period was paid at checkout


async def test_a_late_event_within_the_grace_window_is_billed_in_its_period(
    merchant: Merchant,
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    subscription = await merchant.subscribe(plan)
    # The period has ended, but its grace window has not.
    subscription = await merchant.advance(subscription, timedelta(days=30, minutes=30))
    late = mpb.UsageEventInput(
        service_id=subscription.service_id,
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        event_key="token_generated",
        quantity="7",
    )
    late.occurred_at.CopyFrom(subscription.current_period_end)
    late.occurred_at.FromDatetime(
        subscription.current_period_end.ToDatetime() - timedelta(minutes=1)
    )
    await merchant.metering.RecordUsageEvent(
        mpb.RecordUsageEventRequest(event=late), metadata=merchant.metadata
    )

    await merchant.advance(subscription, GRACE)

    [invoice] = await merchant.invoices(subscription)
    assert invoice.amount == "7.000000"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.metering.RecordUsageEvent(
            mpb.RecordUsageEventRequest(event=late), metadata=merchant.metadata
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "occurred_at",
    )


async def test_test_clocks_are_refused_unless_enabled(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    subscription = await merchant.subscribe(plan)
    settings = merchant.invoicing.settings
    settings.test_clock_enabled = False
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await merchant.advance(subscription, timedelta(days=1))
    finally:
        settings.test_clock_enabled = True
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_scheduler_closes_periods_on_the_service_clock(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.25")
    subscription = await merchant.subscribe(plan)
    await merchant.record(subscription, "token_generated", "4")
    billing_clock.advance(MONTH_AND_GRACE)

    assert await merchant.close_periods() >= 1

    [invoice] = await merchant.invoices(subscription)
    assert invoice.amount == "1.000000"

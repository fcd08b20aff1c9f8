"""Usage metering acknowledged around a subscription's end is billed once, by its final invoice,
or refused at ingestion: never accepted and dropped (issue 14)."""

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.metering.v1 import metering_pb2 as mpb
from service_kit.clock import ManualClock
from service_kit.proto_time import to_timestamp
from tests.conftest import field_violation
from tests.invoicing.conftest import Merchant

MINUTE = timedelta(minutes=1)
MICROSECOND = timedelta(microseconds=1)


def moment(timestamp: object) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined, no-any-return]


def own_now(subscription: pb.Subscription, clock: ManualClock) -> datetime:
    """The subscription's present: its test clock, or the services' clock."""
    if subscription.HasField("test_clock_time"):
        return moment(subscription.test_clock_time)
    return clock.now()


async def daily_usage_plan(merchant: Merchant) -> pb.Plan:
    """Every unit costs 1 USDC; periods of one day."""
    return await merchant.plan(
        pricing_type=pb.PRICING_TYPE_USAGE_BASED,
        amount="1",
        billing_interval=pb.BILLING_INTERVAL_DAY,
    )


async def post(
    merchant: Merchant, subscription: pb.Subscription, quantity: str, occurred_at: datetime
) -> mpb.RecordUsageEventResponse:
    return await merchant.metering.RecordUsageEvent(
        mpb.RecordUsageEventRequest(
            event=mpb.UsageEventInput(
                service_id=subscription.service_id,
                subscription_id=subscription.id,
                user_id=subscription.user_id,
                event_key="tokens",
                quantity=quantity,
                occurred_at=to_timestamp(occurred_at),
            )
        ),
        metadata=merchant.metadata,
    )


async def accepted(
    merchant: Merchant, subscription: pb.Subscription, quantity: str, occurred_at: datetime
) -> None:
    response = await post(merchant, subscription, quantity, occurred_at)
    assert response.outcome == mpb.USAGE_EVENT_OUTCOME_ACCEPTED


async def refusal(
    merchant: Merchant, subscription: pb.Subscription, quantity: str, occurred_at: datetime
) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await post(merchant, subscription, quantity, occurred_at)
    return caught.value.code(), field_violation(caught.value), caught.value.details() or ""


async def advance_to(
    merchant: Merchant, subscription: pb.Subscription, clock: ManualClock, target: datetime
) -> pb.Subscription:
    return await merchant.advance(subscription, target - own_now(subscription, clock))


async def cancel(
    merchant: Merchant, subscription: pb.Subscription, at_period_end: bool = False
) -> pb.Subscription:
    return await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=subscription.id, at_period_end=at_period_end),
        metadata=merchant.metadata,
    )


async def billed(
    merchant: Merchant, subscription: pb.Subscription
) -> list[tuple[datetime, datetime, str, str]]:
    """(period start, period end, amount, billed quantity) of each invoice, oldest first."""
    invoices = await merchant.invoices(subscription)
    return sorted(
        (moment(i.period_start), moment(i.period_end), i.amount, i.lines[0].quantity)
        for i in invoices
    )


async def test_a_cancel_in_the_grace_hour_bills_the_ended_period_and_the_events_after_it(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    subscription = await merchant.subscribe(await daily_usage_plan(merchant))
    start, end = moment(subscription.current_period_start), moment(subscription.current_period_end)
    await accepted(merchant, subscription, "1", start + MINUTE)
    # The period has ended; it stays open for its grace hour.
    subscription = await advance_to(merchant, subscription, billing_clock, end + 30 * MINUTE)
    await accepted(merchant, subscription, "10", end - MICROSECOND)
    await accepted(merchant, subscription, "100", end + 10 * MINUTE)
    next_day = await merchant.metering.GetUsageSummary(
        mpb.GetUsageSummaryRequest(
            subscription_id=subscription.id,
            start_time=to_timestamp(end),
            end_time=to_timestamp(end + timedelta(days=1)),
        ),
        metadata=merchant.metadata,
    )
    assert [(s.event_key, s.value) for s in next_day.summaries] == [("tokens", "100")]

    canceled = await cancel(merchant, subscription)

    assert canceled.status == pb.SUBSCRIPTION_STATUS_CANCELED
    assert moment(canceled.cancel_time) == end + 30 * MINUTE
    # The ended period is closed as the scheduler would have closed it; the final invoice bills
    # the next period's half hour and its events.
    assert (moment(canceled.current_period_start), moment(canceled.current_period_end)) == (
        end,
        end + timedelta(days=1),
    )
    assert await billed(merchant, subscription) == [
        (start, end, "11.000000", "11"),
        (end, end + 30 * MINUTE, "100.000000", "100"),
    ]
    assert (await refusal(merchant, subscription, "1", end + 20 * MINUTE))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "subscription_id",
    )


async def test_a_cancel_bills_the_events_stamped_after_it_within_the_clock_skew(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    subscription = await merchant.subscribe(await daily_usage_plan(merchant))
    start, end = moment(subscription.current_period_start), moment(subscription.current_period_end)
    await accepted(merchant, subscription, "1", start + MINUTE)
    subscription = await advance_to(merchant, subscription, billing_clock, end - 2 * MINUTE)
    await accepted(merchant, subscription, "10", end - MICROSECOND)
    await accepted(merchant, subscription, "100", end + 2 * MINUTE)

    canceled = await cancel(merchant, subscription)

    assert moment(canceled.cancel_time) == end - 2 * MINUTE
    assert await billed(merchant, subscription) == [(start, end - 2 * MINUTE, "111.000000", "111")]


async def test_a_cancel_at_period_end_refuses_events_from_the_end_on(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    subscription = await merchant.subscribe(await daily_usage_plan(merchant))
    start, end = moment(subscription.current_period_start), moment(subscription.current_period_end)
    await accepted(merchant, subscription, "1", start + MINUTE)
    pending = await cancel(merchant, subscription, at_period_end=True)
    assert (pending.status, pending.cancel_at_period_end) == (pb.SUBSCRIPTION_STATUS_ACTIVE, True)
    subscription = await advance_to(merchant, subscription, billing_clock, end + 30 * MINUTE)

    assert await refusal(merchant, subscription, "100", end + 10 * MINUTE) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "occurred_at",
        f"occurred_at {(end + 10 * MINUTE).isoformat()} is too late: the subscription ends at "
        f"{end.isoformat()}",
    )
    # A late event of the period itself still counts in its grace hour.
    await accepted(merchant, subscription, "10", end - MICROSECOND)
    ended = await advance_to(merchant, subscription, billing_clock, end + 61 * MINUTE)

    assert (ended.status, moment(ended.cancel_time)) == (pb.SUBSCRIPTION_STATUS_CANCELED, end)
    assert await billed(merchant, subscription) == [(start, end, "11.000000", "11")]


async def test_events_acknowledged_past_the_end_before_a_cancel_at_period_end_are_billed(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    subscription = await merchant.subscribe(await daily_usage_plan(merchant))
    start, end = moment(subscription.current_period_start), moment(subscription.current_period_end)
    await accepted(merchant, subscription, "1", start + MINUTE)
    subscription = await advance_to(merchant, subscription, billing_clock, end + 30 * MINUTE)
    # No end is known yet: the event belongs to the next period.
    await accepted(merchant, subscription, "100", end + 10 * MINUTE)
    await cancel(merchant, subscription, at_period_end=True)

    ended = await advance_to(merchant, subscription, billing_clock, end + 61 * MINUTE)

    assert (ended.status, moment(ended.cancel_time)) == (pb.SUBSCRIPTION_STATUS_CANCELED, end)
    # The subscription ends with this invoice, so it bills what was acknowledged after its end.
    assert await billed(merchant, subscription) == [(start, end, "101.000000", "101")]


async def test_events_racing_a_cancel_are_refused_or_billed(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    subscription = await merchant.subscribe(await daily_usage_plan(merchant))
    start, end = moment(subscription.current_period_start), moment(subscription.current_period_end)
    subscription = await advance_to(merchant, subscription, billing_clock, end - MINUTE)
    for _ in range(5):
        await accepted(merchant, subscription, "1", end + MINUTE)

    async def racing() -> bool:
        try:
            await accepted(merchant, subscription, "1", end + MINUTE)
        except grpc.aio.AioRpcError as refused:
            assert (refused.code(), field_violation(refused)) == (
                grpc.StatusCode.FAILED_PRECONDITION,
                "subscription_id",
            )
            return False
        return True

    canceled, outcomes = await asyncio.gather(
        cancel(merchant, subscription), asyncio.gather(*(racing() for _ in range(20)))
    )

    assert canceled.status == pb.SUBSCRIPTION_STATUS_CANCELED
    units = 5 + sum(outcomes)
    assert await billed(merchant, subscription) == [
        (start, end - MINUTE, f"{units}.000000", str(units))
    ]

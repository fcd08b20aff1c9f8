"""Pausing and resuming subscriptions through invoicing's gRPC API, with real metering and
PostgreSQL (issue 18): a pause bills its period up to it, nothing is invoiced and usage is
refused while paused, the resumed period starts then, and every event is billed once."""

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.metering.v1 import metering_pb2 as mpb
from invoicing_svc.domain.model import BillingInterval
from invoicing_svc.domain.periods import period_start
from service_kit.proto_time import to_timestamp
from tests.invoicing.conftest import Merchant, outbox_mark, refused, webhook_events
from tests.invoicing.test_plan_changes import (
    DAY,
    Catalog,
    change,
    lines,
    moment,
    own_now,
    period_days,
    period_invoice,
    started,
    to_next_period,
    tokens,
    usdc,
)

D = Decimal


@pytest.fixture
async def catalog(merchant: Merchant) -> Catalog:
    return await Catalog(merchant).build()


async def pause(merchant: Merchant, subscription: pb.Subscription) -> pb.Subscription:
    return await merchant.stub.PauseSubscription(
        pb.PauseSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
    )


async def resume(merchant: Merchant, subscription: pb.Subscription) -> pb.Subscription:
    return await merchant.stub.ResumeSubscription(
        pb.ResumeSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
    )


async def invoices_of(merchant: Merchant, subscription: pb.Subscription) -> list[pb.Invoice]:
    return sorted(await merchant.invoices(subscription), key=lambda i: moment(i.period_start))


async def test_a_pause_bills_its_period_and_the_resumed_one_starts_with_its_credit(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    days = period_days(subscription)
    await tokens(merchant, subscription, 1000, own_now(subscription))
    subscription = await merchant.advance(subscription, 9 * DAY + timedelta(hours=12))
    at = own_now(subscription)

    paused = await pause(merchant, subscription)

    assert (paused.status, moment(paused.pause_time)) == (pb.SUBSCRIPTION_STATUS_PAUSED, at)
    # Basic's fee was paid for the whole period: the time after the pause is credited.
    left = Fraction(days - 10, days)
    carried = D(usdc(30 * left)) - D(1)
    (first,) = await invoices_of(merchant, subscription)
    assert lines(first) == [
        ("tokens: 1000 (per_unit)", "1.000000"),
        (f"Unused time on Basic after {at:%Y-%m-%d} ({left} of the period)", f"-{usdc(30 * left)}"),
        ("Credit carried to the next period", f"{carried:f}"),
    ]
    assert (moment(first.period_end), first.amount) == (at, "0.000000")
    assert [(line.description, line.amount) for line in paused.pending_lines] == [
        ("Credit carried from the previous period", f"{-carried:f}")
    ]
    # While paused: usage refused, no invoice however long it stays paused.
    with pytest.raises(grpc.aio.AioRpcError) as usage:
        await tokens(merchant, paused, 5, at + timedelta(seconds=1))
    assert usage.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "PAUSED" in (usage.value.details() or "")
    still = await merchant.advance(paused, 45 * DAY)
    assert still.status == pb.SUBSCRIPTION_STATUS_PAUSED
    assert len(await invoices_of(merchant, subscription)) == 1

    running = await resume(merchant, still)

    resumed_at = own_now(still)
    assert running.status == pb.SUBSCRIPTION_STATUS_ACTIVE and not running.HasField("pause_time")
    assert moment(running.current_period_start) == resumed_at
    assert moment(running.current_period_end) == period_start(
        resumed_at, BillingInterval.MONTH, 1, 1
    )
    await tokens(merchant, running, 2000, resumed_at)
    await to_next_period(merchant, running)
    second = await period_invoice(merchant, running)
    assert lines(second) == [
        ("Basic: fixed fee", "30.000000"),
        ("tokens: 2000 (per_unit)", "2.000000"),
        ("Credit carried from the previous period", f"{-carried:f}"),
    ]
    assert D(second.amount) == 32 - carried


async def test_a_pause_of_a_period_billed_in_arrears_charges_the_fee_for_its_days(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await to_next_period(merchant, await started(merchant, catalog.basic))
    days = period_days(subscription)
    subscription = await merchant.advance(subscription, 5 * DAY)

    paused = await pause(merchant, subscription)

    invoice = await period_invoice(merchant, subscription)
    assert lines(invoice)[0] == (
        f"Basic: fixed fee x {Fraction(6, days)} of the period",
        usdc(Fraction(30 * 6, days)),
    )
    assert list(paused.pending_lines) == []


async def record_after_the_pause(
    merchant: Merchant, subscription: pb.Subscription
) -> tuple[pb.Subscription, str]:
    """700 tokens stamped two minutes ahead (within metering's clock skew), then the pause: the
    event was acknowledged before it and is stamped after it."""
    stamp = own_now(subscription) + timedelta(minutes=2)
    response = await merchant.metering.RecordUsageEvent(
        mpb.RecordUsageEventRequest(
            event=mpb.UsageEventInput(
                service_id=subscription.service_id,
                subscription_id=subscription.id,
                user_id=subscription.user_id,
                event_key="tokens",
                quantity="700",
                occurred_at=to_timestamp(stamp),
            )
        ),
        metadata=merchant.metadata,
    )
    assert response.outcome == mpb.USAGE_EVENT_OUTCOME_ACCEPTED
    paused = await pause(merchant, subscription)
    assert lines(await period_invoice(merchant, subscription))[0] == (
        "tokens: 0 (per_unit)",
        "0.000000",
    )
    return paused, response.event_id


async def test_an_event_stamped_after_the_pause_is_billed_once_by_the_resumed_period(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await merchant.advance(await started(merchant, catalog.basic), 3 * DAY)
    paused, event_id = await record_after_the_pause(merchant, subscription)
    # Its correction would change what an invoice billed: refused while paused.
    cancel = merchant.metering.CancelUsageEvent(
        mpb.CancelUsageEventRequest(id=event_id), metadata=merchant.metadata
    )
    assert await refused(cancel) == (grpc.StatusCode.FAILED_PRECONDITION, "id")

    running = await resume(merchant, await merchant.advance(paused, timedelta(minutes=1)))

    await to_next_period(merchant, running)
    assert lines(await period_invoice(merchant, running))[1] == (
        "tokens: 700 (per_unit)",
        "0.700000",
    )


async def test_canceling_a_paused_subscription_bills_what_the_pause_left_and_no_fee(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await merchant.advance(await started(merchant, catalog.basic), 9 * DAY)
    days = period_days(subscription)
    paused, _ = await record_after_the_pause(merchant, subscription)

    canceled = await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=paused.id), metadata=merchant.metadata
    )

    assert canceled.status == pb.SUBSCRIPTION_STATUS_CANCELED
    final = (await invoices_of(merchant, subscription))[-1]
    credit = D(usdc(30 * Fraction(days - 10, days)))
    assert lines(final) == [
        ("tokens: 700 (per_unit)", "0.700000"),
        ("Credit carried from the previous period", f"{-credit:f}"),
        ("Credit left unused: the subscription ended", f"{credit - D('0.7'):f}"),
    ]
    assert final.amount == "0.000000"


async def test_pause_and_resume_send_their_webhooks(
    merchant: Merchant, catalog: Catalog, db: asyncpg.Connection
) -> None:
    subscription = await merchant.advance(await started(merchant, catalog.basic), 2 * DAY)
    mark = await outbox_mark(db)

    paused = await pause(merchant, subscription)
    running = await resume(merchant, paused)

    events = await webhook_events(db, merchant, mark)
    assert [e["type"] for e in events] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "subscription.paused",
        "subscription.resumed",
    ]
    assert (events[3]["data"]["status"], events[4]["data"]["status"]) == (
        "SUBSCRIPTION_STATUS_PAUSED",
        "SUBSCRIPTION_STATUS_ACTIVE",
    )
    assert events[4]["data"]["currentPeriodStart"] == running.current_period_start.ToJsonString()


async def test_what_a_pause_refuses_leaves_the_subscription_as_it_was(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    prepaid_plan = await merchant.plan(
        pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.001", prepaid_only=True
    )
    prepaid = await merchant.subscribe(prepaid_plan)
    failed = grpc.StatusCode.FAILED_PRECONDITION

    assert await refused(resume(merchant, subscription)) == (failed, "id")
    assert await refused(pause(merchant, prepaid)) == (failed, "id")
    unknown = pb.Subscription(id="sub_00000000000000000000000000")
    assert await refused(pause(merchant, unknown)) == (grpc.StatusCode.NOT_FOUND, "id")
    paused = await pause(merchant, subscription)
    assert await refused(pause(merchant, paused)) == (failed, "id")
    assert await refused(change(merchant, paused, catalog.pro)) == (failed, "id")
    at_end = merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=paused.id, at_period_end=True), metadata=merchant.metadata
    )
    assert await refused(at_end) == (failed, "at_period_end")
    after = await merchant.stub.GetSubscription(
        pb.GetSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
    )
    assert after == paused

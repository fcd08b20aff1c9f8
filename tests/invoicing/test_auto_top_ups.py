"""Auto top-ups, with invoicing alone: set and read back, refused field by field, a top-up
invoice finalized whenever the subscriber's reported balance is below the threshold (at once
when it is already), never while another top-up is unpaid, never for a subscription that is not
ACTIVE, and none once removed."""

import asyncio

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from tests.conftest import field_violation
from tests.invoicing.conftest import Merchant


async def set_auto_top_up(
    merchant: Merchant, subscription: pb.Subscription, threshold: str, amount: str
) -> pb.AutoTopUp:
    return await merchant.stub.SetAutoTopUp(
        pb.SetAutoTopUpRequest(
            subscription_id=subscription.id, enabled=True, threshold=threshold, amount=amount
        ),
        metadata=merchant.metadata,
    )


async def report(merchant: Merchant, user_id: str, balance: str, version: int) -> None:
    await merchant.stub.ReportCreditBalance(
        pb.ReportCreditBalanceRequest(user_id=user_id, balance=balance, version=version),
        metadata=merchant.metadata,
    )


async def top_ups(merchant: Merchant, subscription: pb.Subscription) -> list[tuple[str, int]]:
    return [(i.amount, i.status) for i in await merchant.invoices(subscription) if i.top_up]


async def subscribed(merchant: Merchant) -> pb.Subscription:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    return await merchant.subscribe(plan)


async def test_a_low_balance_invoices_one_top_up_at_a_time(merchant: Merchant) -> None:
    subscription = await subscribed(merchant)
    user = subscription.user_id
    await report(merchant, user, "3", 1)
    unset = await merchant.stub.GetAutoTopUp(
        pb.GetAutoTopUpRequest(subscription_id=subscription.id), metadata=merchant.metadata
    )
    assert (unset.enabled, unset.threshold, unset.amount) == (False, "", "")

    # Above the threshold: nothing yet.
    created = await set_auto_top_up(merchant, subscription, "2", "10")
    assert (created.subscription_id, created.enabled, created.threshold, created.amount) == (
        subscription.id,
        True,
        "2.000000",
        "10.000000",
    )
    read = await merchant.stub.GetAutoTopUp(
        pb.GetAutoTopUpRequest(subscription_id=subscription.id), metadata=merchant.metadata
    )
    assert read == created
    assert await top_ups(merchant, subscription) == []

    # Below it: one top-up, finalized; more low reports while it is unpaid add none.
    await report(merchant, user, "1.5", 2)
    await report(merchant, user, "0", 3)
    [invoice] = [i for i in await merchant.invoices(subscription) if i.top_up]
    assert (invoice.status, invoice.amount, invoice.user_id) == (
        pb.INVOICE_STATUS_OPEN,
        "10.000000",
        user,
    )
    assert [(line.description, line.amount) for line in invoice.lines] == [
        ("Prepaid credits", "10.000000")
    ]
    # A late report of an older version changes nothing either.
    await merchant.stub.VoidInvoice(
        pb.VoidInvoiceRequest(id=invoice.id), metadata=merchant.metadata
    )
    await report(merchant, user, "0", 2)
    assert await top_ups(merchant, subscription) == [("10.000000", pb.INVOICE_STATUS_VOID)]

    # The next low report, once nothing is unpaid, invoices the next.
    await report(merchant, user, "0", 4)
    assert sorted(await top_ups(merchant, subscription)) == [
        ("10.000000", pb.INVOICE_STATUS_OPEN),
        ("10.000000", pb.INVOICE_STATUS_VOID),
    ]


async def test_setting_it_below_the_threshold_invoices_at_once_and_removing_it_stops(
    merchant: Merchant,
) -> None:
    subscription = await subscribed(merchant)
    # No report yet: the balance is 0.
    await set_auto_top_up(merchant, subscription, "1", "5")
    [invoice] = [i for i in await merchant.invoices(subscription) if i.top_up]
    assert (invoice.status, invoice.amount) == (pb.INVOICE_STATUS_OPEN, "5.000000")
    await merchant.stub.VoidInvoice(
        pb.VoidInvoiceRequest(id=invoice.id), metadata=merchant.metadata
    )

    removed = await merchant.stub.SetAutoTopUp(
        pb.SetAutoTopUpRequest(subscription_id=subscription.id), metadata=merchant.metadata
    )
    await report(merchant, subscription.user_id, "0", 1)

    assert (removed.enabled, removed.threshold) == (False, "")
    assert await top_ups(merchant, subscription) == [("5.000000", pb.INVOICE_STATUS_VOID)]


async def test_a_canceled_subscription_buys_nothing(merchant: Merchant) -> None:
    subscription = await subscribed(merchant)
    await report(merchant, subscription.user_id, "9", 1)
    await set_auto_top_up(merchant, subscription, "1", "5")
    await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
    )

    await report(merchant, subscription.user_id, "0", 2)

    assert await top_ups(merchant, subscription) == []


@pytest.mark.parametrize(
    ("threshold", "amount", "field"),
    [
        ("-1", "5", "threshold"),
        ("", "5", "threshold"),
        ("1.0000001", "5", "threshold"),
        ("1", "0", "amount"),
        ("1", "", "amount"),
        ("1", "1e15", "amount"),
    ],
)
async def test_refused_terms_name_the_field_and_store_nothing(
    merchant: Merchant, threshold: str, amount: str, field: str
) -> None:
    subscription = await subscribed(merchant)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await set_auto_top_up(merchant, subscription, threshold, amount)

    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        field,
    )
    found = await merchant.stub.GetAutoTopUp(
        pb.GetAutoTopUpRequest(subscription_id=subscription.id), metadata=merchant.metadata
    )
    assert found.enabled is False


async def test_an_unknown_subscription_is_not_found(merchant: Merchant) -> None:
    for call in (
        merchant.stub.GetAutoTopUp(
            pb.GetAutoTopUpRequest(subscription_id="sub_missing"), metadata=merchant.metadata
        ),
        set_auto_top_up(merchant, pb.Subscription(id="sub_missing"), "1", "5"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert (caught.value.code(), field_violation(caught.value)) == (
            grpc.StatusCode.NOT_FOUND,
            "subscription_id",
        )


async def test_a_subscriber_buys_once_whatever_runs_at_the_same_time(merchant: Merchant) -> None:
    # Two subscriptions of one subscriber, each with an auto top-up set at the same time as low
    # balances are reported: one top-up in all.
    first, second = await subscribed(merchant), await subscribed(merchant)
    assert first.user_id == second.user_id
    await report(merchant, first.user_id, "0.5", 1)

    await asyncio.gather(
        set_auto_top_up(merchant, first, "1", "5"),
        set_auto_top_up(merchant, second, "1", "7"),
        *(report(merchant, first.user_id, "0.5", version) for version in range(2, 6)),
    )

    bought = await top_ups(merchant, first) + await top_ups(merchant, second)
    assert len(bought) == 1
    assert bought[0][1] == pb.INVOICE_STATUS_OPEN

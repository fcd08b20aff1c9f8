"""Settlement's reports of who holds credits, with invoicing alone (no settlement listens): a
report is refused field by field, an older version never replaces a newer one, and an invoice
asks settlement to spend credits only for a subscriber whose last reported balance is above 0
(and never for a top-up)."""

from datetime import timedelta

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from tests.conftest import field_violation
from tests.invoicing.conftest import Merchant


async def report(merchant: Merchant, user_id: str, balance: str, version: int) -> None:
    await merchant.stub.ReportCreditBalance(
        pb.ReportCreditBalanceRequest(user_id=user_id, balance=balance, version=version),
        metadata=merchant.metadata,
    )


async def invoice_for(
    merchant: Merchant, plan: pb.Plan, subscription: pb.Subscription
) -> pb.Invoice:
    return await merchant.stub.CreateInvoice(
        pb.CreateInvoiceRequest(
            subscription_id=subscription.id, payment_plan_id=plan.id, amount="0.5"
        ),
        metadata=merchant.metadata,
    )


@pytest.mark.parametrize(
    ("user_id", "balance", "version", "field"),
    [
        ("", "1", 1, "user_id"),
        ("usr 1", "1", 1, "user_id"),
        ("usr_1", "", 1, "balance"),
        ("usr_1", "-1", 1, "balance"),
        ("usr_1", "0.0000001", 1, "balance"),
        ("usr_1", "1e15", 1, "balance"),
        ("usr_1", "NaN", 1, "balance"),
        ("usr_1", "1", 0, "version"),
    ],
)
async def test_a_report_is_refused_naming_the_field(
    merchant: Merchant, user_id: str, balance: str, version: int, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await report(merchant, user_id, balance, version)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(caught.value) == field


async def test_an_invoice_asks_settlement_only_while_the_newest_report_shows_credits(
    merchant: Merchant,
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await merchant.subscribe(plan)
    await report(merchant, subscription.user_id, "2.5", 2)

    # Settlement must spend the credits, and nobody answers: nothing is stored.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoice_for(merchant, plan, subscription)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await merchant.invoices(subscription) == []

    # A late report of an older balance changes nothing.
    await report(merchant, subscription.user_id, "0", 1)
    with pytest.raises(grpc.aio.AioRpcError):
        await invoice_for(merchant, plan, subscription)
    assert await merchant.invoices(subscription) == []

    # Once the credits are gone, invoices no longer wait for settlement.
    await report(merchant, subscription.user_id, "0", 3)
    invoice = await invoice_for(merchant, plan, subscription)
    assert (invoice.status, invoice.amount, invoice.credits_applied) == (
        pb.INVOICE_STATUS_OPEN,
        "0.500000",
        "0.000000",
    )
    assert [line.description for line in invoice.lines] == ["Amount computed by the merchant"]


async def test_another_merchants_report_is_not_this_merchants(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await merchant.subscribe(plan)
    other = Merchant(
        merchant.invoicing, merchant.stub, merchant.metering, merchant.merchant_id + "x"
    )
    await report(other, subscription.user_id, "5", 1)

    invoice = await invoice_for(merchant, plan, subscription)

    assert (invoice.amount, invoice.credits_applied) == ("0.500000", "0.000000")


async def test_a_top_up_is_never_paid_by_credits_and_has_no_period(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await merchant.subscribe(plan)
    # Settlement (nowhere here) would be asked for an invoice that credits may pay.
    await report(merchant, subscription.user_id, "9", 1)
    request = pb.CreateInvoiceRequest(
        subscription_id=subscription.id, payment_plan_id=plan.id, amount="5", top_up=True
    )

    invoice = await merchant.stub.CreateInvoice(request, metadata=merchant.metadata)

    assert (invoice.status, invoice.amount, invoice.credits_applied, invoice.top_up) == (
        pb.INVOICE_STATUS_OPEN,
        "5.000000",
        "0.000000",
        True,
    )
    assert [(line.description, line.amount) for line in invoice.lines] == [
        ("Prepaid credits", "5.000000")
    ]
    request.period_start.FromSeconds(1_800_000_000)
    request.period_end.FromSeconds(1_800_086_400)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.stub.CreateInvoice(request, metadata=merchant.metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(caught.value) == "period_start"
    assert len(await merchant.invoices(subscription)) == 1


async def test_while_settlement_is_away_only_the_periods_of_credit_holders_wait(
    merchant: Merchant,
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    holder = await merchant.subscribe(plan)
    other = Merchant(
        merchant.invoicing, merchant.stub, merchant.metering, merchant.merchant_id + "o"
    )
    plain = await other.subscribe(
        await other.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    )
    await report(merchant, holder.user_id, "2", 1)
    await merchant.record(holder, "tokens", "1000")
    month = timedelta(days=31, hours=2)

    # Asked for by id, the holder's close says settlement is away; its clock has moved on.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.advance(holder, month)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    rolled = await other.advance(plain, month)

    # The scheduler closes every other period and leaves the holder's for a later pass.
    await merchant.close_periods()
    assert [i.amount for i in await other.invoices(plain)] == ["0.000000"]
    assert rolled.current_period_start == plain.current_period_end
    assert await merchant.invoices(holder) == []
    waiting = await merchant.stub.GetSubscription(
        pb.GetSubscriptionRequest(id=holder.id), metadata=merchant.metadata
    )
    assert waiting.current_period_start == holder.current_period_start

    # Once nothing is left to spend, the holder's period closes too.
    await report(merchant, holder.user_id, "0", 2)
    await merchant.close_periods()
    [invoice] = await merchant.invoices(holder)
    assert (invoice.period_start, invoice.amount, invoice.credits_applied) == (
        holder.current_period_start,
        "0.010000",
        "0.000000",
    )

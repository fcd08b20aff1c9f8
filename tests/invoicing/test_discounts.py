"""Coupons and discounts through invoicing's gRPC API, with real metering and PostgreSQL (issue
18): a percentage or an amount off, once, for N periods or forever, on a subscription or a
customer, exact on the invoice, with redemption limits (exact under concurrency) and expiry."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from invoicing_svc.domain.discounts import Coupon, CouponDuration, Discount, take_discounts
from service_kit.proto_time import to_timestamp
from tests.invoicing.conftest import Merchant, refused
from tests.invoicing.test_plan_changes import (
    Catalog,
    lines,
    own_now,
    period_invoice,
    started,
    to_next_period,
    tokens,
)
from tests.invoicing.test_trials import in_trial, past_the_trial, trial_plan


@pytest.fixture
async def catalog(merchant: Merchant) -> Catalog:
    return await Catalog(merchant).build()


async def coupon(merchant: Merchant, **fields: object) -> pb.Coupon:
    values: dict[str, object] = {"name": "Launch", "duration": pb.COUPON_DURATION_FOREVER}
    values.update(fields)
    return await merchant.stub.CreateCoupon(
        pb.CreateCouponRequest(coupon=pb.Coupon(**values)),  # type: ignore[arg-type]
        metadata=merchant.metadata,
    )


async def discount(merchant: Merchant, offer: pb.Coupon, **target: str) -> pb.Discount:
    return await merchant.stub.CreateDiscount(
        pb.CreateDiscountRequest(coupon_id=offer.id, **target), metadata=merchant.metadata
    )


async def test_a_percentage_for_two_periods_is_taken_off_exactly_then_ends(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    offer = await coupon(
        merchant, percent_off="12.5", duration=pb.COUPON_DURATION_REPEATING, duration_periods=2
    )
    made = await discount(merchant, offer, subscription_id=subscription.id)
    assert (made.periods_left, made.customer_id) == (2, subscription.user_id)
    await tokens(merchant, subscription, 1234, own_now(subscription))

    second = await to_next_period(merchant, subscription)
    third = await to_next_period(merchant, second)
    await to_next_period(merchant, third)

    # 12.5% of 1.234 is 0.15425: half-even to 0.154250 exactly (no rounding needed); of 30, 3.75.
    assert lines(await period_invoice(merchant, subscription)) == [
        ("tokens: 1234 (per_unit)", "1.234000"),
        ("Discount: Launch (12.5% off)", "-0.154250"),
    ]
    assert (await period_invoice(merchant, second)).amount == "26.250000"
    assert lines(await period_invoice(merchant, third)) == [
        ("Basic: fixed fee", "30.000000"),
        ("tokens: 0 (per_unit)", "0.000000"),
    ]
    (listed,) = (
        await merchant.stub.ListDiscounts(
            pb.ListDiscountsRequest(subscription_id=subscription.id), metadata=merchant.metadata
        )
    ).discounts
    assert (listed.periods_left, listed.HasField("end_time")) == (0, True)


async def test_a_percentage_rounds_half_even_once(merchant: Merchant, catalog: Catalog) -> None:
    subscription = await started(merchant, catalog.basic)
    offer = await coupon(merchant, percent_off="33.33", duration=pb.COUPON_DURATION_ONCE)
    await discount(merchant, offer, subscription_id=subscription.id)
    await tokens(merchant, subscription, 15, own_now(subscription))

    await to_next_period(merchant, subscription)

    # 33.33% of 0.015 = 0.0049995: 0.005000 (half-even of ...9995 rounds up, the 6th digit odd).
    invoice = await period_invoice(merchant, subscription)
    assert lines(invoice)[-1] == ("Discount: Launch (33.33% off)", "-0.005000")
    assert invoice.amount == "0.010000"


async def test_a_customers_amount_off_covers_its_subscriptions_and_one_of_its_own_wins(
    merchant: Merchant, catalog: Catalog
) -> None:
    first = await started(merchant, catalog.basic)
    second = await started(merchant, catalog.pro)
    third = await started(merchant, catalog.basic)
    assert first.user_id == second.user_id == third.user_id
    theirs = await coupon(merchant, name="Loyal", amount_off="5")
    own = await coupon(merchant, name="Own", amount_off="0.5")
    await discount(merchant, theirs, customer_id=first.user_id)
    await discount(merchant, own, subscription_id=third.id)
    for subscription in (first, second, third):
        await tokens(merchant, subscription, 2000, own_now(subscription))

    after = [await to_next_period(merchant, s) for s in (first, second, third)]

    # 2.000 and 1.000 of usage: 5 off is capped at the charges; the third takes its own.
    invoices = [await period_invoice(merchant, s) for s in (first, second, third)]
    assert [(lines(i)[-1], i.amount) for i in invoices] == [
        (("Discount: Loyal (5.000000 USDC off)", "-2.000000"), "0.000000"),
        (("Discount: Loyal (5.000000 USDC off)", "-1.000000"), "0.000000"),
        (("Discount: Own (0.500000 USDC off)", "-0.500000"), "1.500000"),
    ]
    await to_next_period(merchant, after[0])
    assert (await period_invoice(merchant, after[0])).amount == "25.000000"


async def test_redemptions_stop_at_the_limit_however_many_race(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscriptions = [await started(merchant, catalog.basic) for _ in range(8)]
    offer = await coupon(merchant, percent_off="10", max_redemptions=3)

    answers = await asyncio.gather(
        *(discount(merchant, offer, subscription_id=s.id) for s in subscriptions),
        return_exceptions=True,
    )

    made = [a for a in answers if isinstance(a, pb.Discount)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert (len(made), len(refused)) == (3, 5)
    assert {e.code() for e in refused} == {grpc.StatusCode.FAILED_PRECONDITION}
    got = await merchant.stub.GetCoupon(
        pb.GetCouponRequest(id=offer.id), metadata=merchant.metadata
    )
    assert got.times_redeemed == 3


async def test_what_a_coupon_or_a_discount_refuses(merchant: Merchant, catalog: Catalog) -> None:
    subscription = await started(merchant, catalog.basic)
    invalid, failed = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION
    cases: list[tuple[dict[str, object], str]] = [
        ({"percent_off": "10", "amount_off": "1"}, "coupon.percent_off"),
        ({}, "coupon.percent_off"),
        ({"percent_off": "0"}, "coupon.percent_off"),
        ({"percent_off": "100.5"}, "coupon.percent_off"),
        ({"percent_off": "10.001"}, "coupon.percent_off"),
        ({"amount_off": "0.0000001"}, "coupon.amount_off"),
        (
            {"percent_off": "10", "duration": pb.COUPON_DURATION_REPEATING},
            "coupon.duration_periods",
        ),
        ({"percent_off": "10", "duration_periods": 3}, "coupon.duration_periods"),
        ({"percent_off": "10", "duration": 0}, "coupon.duration"),
        ({"percent_off": "10", "name": ""}, "coupon.name"),
    ]
    for fields, field in cases:
        assert await refused(coupon(merchant, **fields)) == (invalid, field), fields
    expired = pb.Coupon(name="Old", percent_off="10", duration=pb.COUPON_DURATION_ONCE)
    expired.redeem_by.CopyFrom(to_timestamp(own_now(subscription) - timedelta(days=400)))
    old = await merchant.stub.CreateCoupon(
        pb.CreateCouponRequest(coupon=expired), metadata=merchant.metadata
    )
    assert await refused(discount(merchant, old, subscription_id=subscription.id)) == (
        failed,
        "coupon_id",
    )
    offer = await coupon(merchant, percent_off="10")
    assert await refused(discount(merchant, offer)) == (invalid, "subscription_id")
    assert await refused(
        discount(merchant, pb.Coupon(id="cpn_x"), subscription_id=subscription.id)
    ) == (
        grpc.StatusCode.NOT_FOUND,
        "coupon_id",
    )
    assert await refused(discount(merchant, offer, customer_id="usr_nobody")) == (
        grpc.StatusCode.NOT_FOUND,
        "customer_id",
    )
    running = await discount(merchant, offer, subscription_id=subscription.id)
    assert await refused(discount(merchant, offer, subscription_id=subscription.id)) == (
        failed,
        "subscription_id",
    )
    other = Merchant(merchant.invoicing, merchant.stub, merchant.metering, "mer_discount_x")
    assert await refused(discount(other, offer, subscription_id=subscription.id)) == (
        grpc.StatusCode.NOT_FOUND,
        "coupon_id",
    )

    deleted = await merchant.stub.DeleteDiscount(
        pb.DeleteDiscountRequest(id=running.id), metadata=merchant.metadata
    )
    again = await merchant.stub.DeleteDiscount(
        pb.DeleteDiscountRequest(id=running.id), metadata=merchant.metadata
    )

    assert deleted.HasField("end_time") and again == deleted
    await to_next_period(merchant, subscription)
    assert [
        d for d, _ in lines(await period_invoice(merchant, subscription)) if "Discount" in d
    ] == []


async def test_a_once_coupon_waits_through_a_free_trial_for_an_invoice_that_charges(
    merchant: Merchant,
) -> None:
    plan = await trial_plan(merchant)
    subscription = await in_trial(merchant, plan)
    offer = await coupon(
        merchant, name="Welcome", percent_off="50", duration=pb.COUPON_DURATION_ONCE
    )
    await discount(merchant, offer, subscription_id=subscription.id)
    await tokens(merchant, subscription, 1500, own_now(subscription))

    following = await past_the_trial(merchant, subscription)
    await to_next_period(merchant, following)

    assert lines(await period_invoice(merchant, subscription))[-1] == ("Free trial", "-1.500000")
    assert lines(await period_invoice(merchant, following)) == [
        ("Basic: fixed fee", "30.000000"),
        ("tokens: 0 (per_unit)", "0.000000"),
        ("Discount: Welcome (50% off)", "-15.000000"),
    ]


def test_a_customers_discount_is_never_taken_by_another_merchants_customer_of_that_id() -> None:
    """The close's batch spans merchants, whose user ids may be the same (pure)."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    offer = Coupon(
        id="cpn_a",
        merchant_id="mer_a",
        name="A's",
        percent_off=Decimal(10),
        amount_off=None,
        duration=CouponDuration.ONCE,
        duration_periods=0,
        max_redemptions=None,
        redeem_by=None,
        create_time=now,
    )
    theirs = Discount("di_a", "mer_a", offer, "", "usr_same", 1, now)

    taken, spent = take_discounts(
        [theirs], [("mer_b", "sub_b", "usr_same"), ("mer_a", "sub_a", "usr_same")], now
    )

    assert taken == [None, offer]
    assert [(d.id, d.periods_left, d.end_time) for d in spent] == [("di_a", 0, now)]

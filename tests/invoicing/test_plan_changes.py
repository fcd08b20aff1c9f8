"""Plan changes through invoicing's gRPC API, against real metering and PostgreSQL (issue 18):
a change now splits the period (each part's usage priced by its plan, on one invoice), the fixed
fee follows the proration behaviour, a change at the period's end moves the next period (to
another interval too), and every refusal leaves the subscription as it was."""

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.metering.v1 import metering_pb2 as mpb
from service_kit.proto_time import to_timestamp
from tests.invoicing.conftest import GRACE, Merchant, outbox_mark, refused, webhook_events

D = Decimal
DAY = timedelta(days=1)
NOW = pb.PLAN_CHANGE_TIMING_NOW
PERIOD_END = pb.PLAN_CHANGE_TIMING_PERIOD_END
PRORATE = pb.PRORATION_BEHAVIOR_CREATE_PRORATIONS
NO_PRORATION = pb.PRORATION_BEHAVIOR_NONE
INVOICE_NOW = pb.PRORATION_BEHAVIOR_ALWAYS_INVOICE


def usdc(value: Fraction) -> str:
    """The oracle's rounding: exact, then half-even to the base unit."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(Decimal("0.000001"), ROUND_HALF_EVEN))


def period_days(subscription: pb.Subscription) -> int:
    return (
        moment(subscription.current_period_end) - moment(subscription.current_period_start)
    ).days


def moment(timestamp: object) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined, no-any-return]


class Catalog:
    """One service's plans: Basic (30 USDC a month, 0.001 a token) and Pro (90 USDC a month,
    0.0005 a token), a yearly plan, and a plan of another service."""

    def __init__(self, merchant: Merchant) -> None:
        self.merchant = merchant

    async def build(self) -> "Catalog":
        service = await self.merchant.service()
        self.basic = await self._plan(service.id, "Basic", "30", "0.001")
        self.pro = await self._plan(service.id, "Pro", "90", "0.0005")
        self.yearly = await self._plan(
            service.id, "Yearly", "300", "0.0004", interval=pb.BILLING_INTERVAL_YEAR
        )
        self.elsewhere = await self.merchant.plan(
            name="Other", pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1"
        )
        return self

    async def _plan(
        self,
        service_id: str,
        name: str,
        fee: str,
        unit_price: str,
        interval: pb.BillingInterval.ValueType = pb.BILLING_INTERVAL_MONTH,
    ) -> pb.Plan:
        charge = pb.UsageCharge(
            event_key="tokens", model=pb.CHARGE_MODEL_PER_UNIT, unit_price=unit_price
        )
        return await self.merchant.plan(
            service_id=service_id,
            name=name,
            pricing_type=pb.PRICING_TYPE_HYBRID,
            amount=fee,
            charges=[charge],
            billing_interval=interval,
        )


@pytest.fixture
async def catalog(merchant: Merchant) -> Catalog:
    return await Catalog(merchant).build()


async def change(
    merchant: Merchant,
    subscription: pb.Subscription,
    plan: pb.Plan,
    timing: pb.PlanChangeTiming.ValueType = NOW,
    behavior: pb.ProrationBehavior.ValueType = PRORATE,
    request_id: str = "",
) -> pb.ChangeSubscriptionPlanResponse:
    return await merchant.stub.ChangeSubscriptionPlan(
        pb.ChangeSubscriptionPlanRequest(
            id=subscription.id,
            plan_id=plan.id,
            timing=timing,
            proration_behavior=behavior,
            request_id=request_id,
        ),
        metadata=merchant.metadata,
    )


async def tokens(
    merchant: Merchant, subscription: pb.Subscription, quantity: int, occurred_at: datetime
) -> None:
    response = await merchant.metering.RecordUsageEvent(
        mpb.RecordUsageEventRequest(
            event=mpb.UsageEventInput(
                service_id=subscription.service_id,
                subscription_id=subscription.id,
                user_id=subscription.user_id,
                event_key="tokens",
                quantity=str(quantity),
                occurred_at=to_timestamp(occurred_at),
            )
        ),
        metadata=merchant.metadata,
    )
    assert response.outcome == mpb.USAGE_EVENT_OUTCOME_ACCEPTED


def own_now(subscription: pb.Subscription) -> datetime:
    return moment(subscription.test_clock_time)


async def started(merchant: Merchant, plan: pb.Plan) -> pb.Subscription:
    """A subscription (its fee paid up front) whose test clock has started."""
    subscription = await merchant.subscribe(plan)
    return await merchant.advance(subscription, timedelta(seconds=1))


async def to_next_period(merchant: Merchant, subscription: pb.Subscription) -> pb.Subscription:
    """The period closed: its own time moved past its end and the grace window."""
    step = moment(subscription.current_period_end) + GRACE - own_now(subscription)
    return await merchant.advance(subscription, step + timedelta(seconds=1))


def lines(invoice: pb.Invoice) -> list[tuple[str, str]]:
    return [(line.description, line.amount) for line in invoice.lines]


def stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M}"


async def period_invoice(merchant: Merchant, subscription: pb.Subscription) -> pb.Invoice:
    (invoice,) = [
        i
        for i in await merchant.invoices(subscription)
        if moment(i.period_start) == moment(subscription.current_period_start)
    ]
    return invoice


async def test_a_change_now_prices_each_part_by_its_plan_on_the_periods_invoice(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    start, end = moment(subscription.current_period_start), moment(subscription.current_period_end)
    await tokens(merchant, subscription, 1000, own_now(subscription))
    subscription = await merchant.advance(subscription, 9 * DAY + timedelta(hours=12))
    at = own_now(subscription)

    changed = (await change(merchant, subscription, catalog.pro)).subscription

    assert changed.plan_id == catalog.pro.id and changed.fee_plan_id == catalog.pro.id
    assert [(s.plan_id, s.fee_plan_id, moment(s.end_time)) for s in changed.plan_segments] == [
        (catalog.basic.id, catalog.basic.id, at)
    ]
    # Day 10 is Basic's: the rest of the fee paid up front is credited, Pro's charged.
    day, left = (
        f"{at:%Y-%m-%d}",
        Fraction(period_days(subscription) - 10, period_days(subscription)),
    )
    prorations = [
        (f"Unused time on Basic after {day} ({left} of the period)", "-" + usdc(30 * left)),
        (f"Remaining time on Pro after {day} ({left} of the period)", usdc(90 * left)),
    ]
    assert [(line.description, line.amount) for line in changed.pending_lines] == prorations
    await tokens(merchant, subscription, 3000, at)
    await tokens(merchant, subscription, 500, at - timedelta(seconds=1))
    total = D(3) - D(usdc(30 * left)) + D(usdc(90 * left))
    # The real-time balance prices the period as its invoice will.
    balance = await merchant.stub.GetSubscriptionBalance(
        pb.GetSubscriptionBalanceRequest(subscription_id=subscription.id),
        metadata=merchant.metadata,
    )
    assert D(balance.consumed) == total and len(balance.lines) == 4
    following = await to_next_period(merchant, changed)

    invoice = await period_invoice(merchant, changed)
    assert lines(invoice) == [
        (f"Basic, {stamp(start)} to {stamp(at)} UTC: tokens: 1500 (per_unit)", "1.500000"),
        (f"Pro, {stamp(at)} to {stamp(end)} UTC: tokens: 3000 (per_unit)", "1.500000"),
        *prorations,
    ]
    assert (D(invoice.amount), invoice.payment_plan_id) == (total, catalog.pro.id)
    # The next period is Pro's alone, its fee billed in arrears.
    assert following.plan_id == catalog.pro.id
    assert (list(following.plan_segments), list(following.pending_lines)) == ([], [])
    await to_next_period(merchant, following)
    assert lines(await period_invoice(merchant, following)) == [
        ("Pro: fixed fee", "90.000000"),
        ("tokens: 0 (per_unit)", "0.000000"),
    ]


async def test_a_period_billed_in_arrears_charges_each_plan_for_its_days(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await to_next_period(merchant, await started(merchant, catalog.basic))
    days = period_days(subscription)
    subscription = await merchant.advance(subscription, 5 * DAY)

    changed = await change(merchant, subscription, catalog.pro)

    assert list(changed.subscription.pending_lines) == []
    await to_next_period(merchant, changed.subscription)
    invoice = await period_invoice(merchant, changed.subscription)
    # The period started 1 h 1 s past its start: 6 started days are Basic's.
    basic, pro = Fraction(30 * 6, days), Fraction(90 * (days - 6), days)
    assert lines(invoice)[:2] == [
        (f"Basic: fixed fee x {Fraction(6, days)} of the period", usdc(basic)),
        (f"Pro: fixed fee x {Fraction(days - 6, days)} of the period", usdc(pro)),
    ]
    assert D(invoice.amount) == D(usdc(basic)) + D(usdc(pro))


async def test_no_proration_keeps_the_old_fee_for_the_period(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await to_next_period(merchant, await started(merchant, catalog.basic))
    subscription = await merchant.advance(subscription, 5 * DAY)

    changed = (
        await change(merchant, subscription, catalog.pro, behavior=NO_PRORATION)
    ).subscription

    assert (changed.plan_id, changed.fee_plan_id) == (catalog.pro.id, catalog.basic.id)
    following = await to_next_period(merchant, changed)
    assert lines(await period_invoice(merchant, changed))[0] == ("Basic: fixed fee", "30.000000")
    await to_next_period(merchant, following)
    assert lines(await period_invoice(merchant, following))[0] == ("Pro: fixed fee", "90.000000")


async def test_always_invoice_bills_an_upgrade_of_a_fee_paid_up_front_at_once(
    merchant: Merchant, catalog: Catalog, db: asyncpg.Connection
) -> None:
    subscription = await started(merchant, catalog.basic)
    subscription = await merchant.advance(subscription, 14 * DAY)
    mark = await outbox_mark(db)

    changed = await change(merchant, subscription, catalog.pro, behavior=INVOICE_NOW)

    day = f"{own_now(subscription):%Y-%m-%d}"
    left = Fraction(period_days(subscription) - 15, period_days(subscription))
    assert changed.HasField("invoice")
    invoice = changed.invoice
    assert lines(invoice) == [
        (f"Unused time on Basic after {day} ({left} of the period)", "-" + usdc(30 * left)),
        (f"Remaining time on Pro after {day} ({left} of the period)", usdc(90 * left)),
    ]
    charged = D(usdc(90 * left)) - D(usdc(30 * left))
    assert (invoice.status, D(invoice.amount)) == (pb.INVOICE_STATUS_OPEN, charged)
    assert not invoice.HasField("period_start") and invoice.subscription_id == subscription.id
    assert list(changed.subscription.pending_lines) == []
    events = await webhook_events(db, merchant, mark)
    assert [e["type"] for e in events] == [
        "subscription.updated",
        "invoice.created",
        "invoice.finalized",
    ]
    assert events[0]["data"]["planId"] == catalog.pro.id
    # The period's own invoice bills no proration twice.
    await to_next_period(merchant, changed.subscription)
    period = await period_invoice(merchant, changed.subscription)
    assert [d for d, _ in lines(period) if "time on" in d] == []


async def test_a_downgrades_credit_beyond_the_periods_charges_is_carried_forward(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.pro)
    await tokens(merchant, subscription, 1000, own_now(subscription))
    subscription = await merchant.advance(subscription, 9 * DAY + timedelta(hours=12))

    # ALWAYS_INVOICE has nothing to invoice at once: a credit waits for the period's invoice.
    changed = await change(merchant, subscription, catalog.basic, behavior=INVOICE_NOW)

    left = Fraction(period_days(subscription) - 10, period_days(subscription))
    assert not changed.HasField("invoice")
    assert [line.amount for line in changed.subscription.pending_lines] == [
        "-" + usdc(90 * left),
        usdc(30 * left),
    ]
    following = await to_next_period(merchant, changed.subscription)
    first = await period_invoice(merchant, changed.subscription)
    # The credit less Pro's 1,000 tokens (0.5) is carried (about 39.5), then Basic's 30 of the
    # next period are taken off it, and what is left pays part of the third period's.
    carried = D(usdc(90 * left)) - D(usdc(30 * left)) - D("0.5")
    assert lines(first)[-1] == ("Credit carried to the next period", f"{carried:f}")
    assert (first.amount, first.status) == ("0.000000", pb.INVOICE_STATUS_PAID)
    assert [(line.description, line.amount) for line in following.pending_lines] == [
        ("Credit carried from the previous period", f"{-carried:f}")
    ]
    after = await to_next_period(merchant, following)
    second = await period_invoice(merchant, following)
    assert lines(second) == [
        ("Basic: fixed fee", "30.000000"),
        ("tokens: 0 (per_unit)", "0.000000"),
        ("Credit carried from the previous period", f"{-carried:f}"),
        ("Credit carried to the next period", f"{carried - 30:f}"),
    ]
    await to_next_period(merchant, after)
    assert D((await period_invoice(merchant, after)).amount) == 30 - (carried - 30)


async def test_a_change_at_the_periods_end_to_another_interval_starts_its_periods_there(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    end = moment(subscription.current_period_end)

    scheduled = await change(merchant, subscription, catalog.yearly, timing=PERIOD_END)

    assert (scheduled.subscription.plan_id, scheduled.subscription.scheduled_plan_id) == (
        catalog.basic.id,
        catalog.yearly.id,
    )
    following = await to_next_period(merchant, scheduled.subscription)
    assert (following.plan_id, following.scheduled_plan_id) == (catalog.yearly.id, "")
    assert moment(following.current_period_start) == end
    assert moment(following.current_period_end) == end.replace(year=end.year + 1)
    invoice = await period_invoice(merchant, scheduled.subscription)
    assert invoice.payment_plan_id == catalog.basic.id
    assert lines(invoice) == [("tokens: 0 (per_unit)", "0.000000")]


async def test_a_change_to_the_current_plan_at_the_periods_end_takes_the_scheduled_one_back(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    await change(merchant, subscription, catalog.pro, timing=PERIOD_END)

    taken_back = await change(merchant, subscription, catalog.basic, timing=PERIOD_END)

    assert taken_back.subscription.scheduled_plan_id == ""
    following = await to_next_period(merchant, taken_back.subscription)
    assert following.plan_id == catalog.basic.id


async def test_a_retried_change_answers_as_the_first_one_did(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    subscription = await merchant.advance(subscription, 3 * DAY)

    first = await change(merchant, subscription, catalog.pro, behavior=INVOICE_NOW, request_id="r1")
    again = await change(merchant, subscription, catalog.pro, behavior=INVOICE_NOW, request_id="r1")

    assert again == first
    assert [
        i.id for i in await merchant.invoices(subscription) if not i.HasField("period_start")
    ] == [first.invoice.id]


async def refusal(
    merchant: Merchant, subscription: pb.Subscription, plan: pb.Plan, **fields: object
) -> tuple[grpc.StatusCode, str]:
    return await refused(change(merchant, subscription, plan, **fields))  # type: ignore[arg-type]


async def test_a_refused_change_leaves_the_subscription_as_it_was(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    unknown = pb.Plan(id="plan_00000000000000000000000000")
    prepaid = await merchant.plan(
        service_id=subscription.service_id,
        pricing_type=pb.PRICING_TYPE_USAGE_BASED,
        amount="0.001",
        prepaid_only=True,
    )

    assert await refusal(merchant, subscription, catalog.elsewhere) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "plan_id",
    )
    assert await refusal(merchant, subscription, unknown) == (grpc.StatusCode.NOT_FOUND, "plan_id")
    assert await refusal(merchant, subscription, catalog.basic) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "plan_id",
    )
    assert await refusal(merchant, subscription, catalog.yearly) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "timing",
    )
    assert await refusal(merchant, subscription, prepaid) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "plan_id",
    )
    assert await refusal(merchant, subscription, catalog.pro, timing=7) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "timing",
    )
    assert await refusal(merchant, subscription, catalog.pro, behavior=9) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "proration_behavior",
    )
    after = await merchant.stub.GetSubscription(
        pb.GetSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
    )
    assert after == subscription
    await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=subscription.id, at_period_end=True),
        metadata=merchant.metadata,
    )
    assert await refusal(merchant, subscription, catalog.pro, timing=PERIOD_END) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "timing",
    )
    await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
    )
    assert await refusal(merchant, subscription, catalog.pro) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "id",
    )


async def test_another_merchants_subscription_is_not_found(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    other = Merchant(merchant.invoicing, merchant.stub, merchant.metering, "mer_planchange_x")
    theirs = await Catalog(other).build()

    assert await refusal(other, subscription, theirs.pro) == (grpc.StatusCode.NOT_FOUND, "id")
    # Nor can a merchant move its subscription to another merchant's plan.
    assert await refusal(merchant, subscription, theirs.pro) == (
        grpc.StatusCode.NOT_FOUND,
        "plan_id",
    )


@pytest.mark.parametrize("seed", [18, 19, 20])
async def test_events_racing_a_change_are_each_billed_under_exactly_one_plan(
    merchant: Merchant, catalog: Catalog, seed: int
) -> None:
    """Events whose times straddle the change arrive while it is made: each is priced by the
    plan in force when it happened, none twice and none left out (three random workloads)."""
    subscription = await started(merchant, catalog.basic)
    subscription = await merchant.advance(subscription, 2 * DAY)
    at = own_now(subscription)
    rng = random.Random(seed)
    offsets = [rng.randint(-600, 240) for _ in range(80)] + [0, 0, -1, 1]
    quantities = [rng.randint(1, 50) for _ in offsets]
    events = [
        tokens(merchant, subscription, q, at + timedelta(seconds=s))
        for q, s in zip(quantities, offsets, strict=True)
    ]

    *_, answer = await asyncio.gather(*events, change(merchant, subscription, catalog.pro))
    assert isinstance(answer, pb.ChangeSubscriptionPlanResponse)
    changed = answer

    assert moment(changed.subscription.plan_segments[-1].end_time) == at
    await to_next_period(merchant, changed.subscription)
    invoice = await period_invoice(merchant, changed.subscription)
    before = sum(q for q, s in zip(quantities, offsets, strict=True) if s < 0)
    after = sum(q for q, s in zip(quantities, offsets, strict=True) if s >= 0)
    assert [(line.quantity, line.amount) for line in invoice.lines[:2]] == [
        (str(before), usdc(Fraction(before, 1000))),
        (str(after), usdc(Fraction(after, 2000))),
    ]
    assert before + after == sum(quantities)


async def test_canceling_after_an_upgrade_charges_the_new_plan_only_up_to_the_end(
    merchant: Merchant, catalog: Catalog
) -> None:
    subscription = await started(merchant, catalog.basic)
    days = period_days(subscription)
    subscription = await merchant.advance(subscription, 9 * DAY + timedelta(hours=12))
    changed = (await change(merchant, subscription, catalog.pro)).subscription
    subscription = await merchant.advance(changed, 5 * DAY)
    canceled_at = own_now(subscription)

    await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
    )

    (final,) = [i for i in await merchant.invoices(subscription) if i.HasField("period_start")]
    # Basic's 30 paid for the period; Pro's days 11-15 are owed; Pro's time after the
    # cancellation (day 16 on) is credited back, and what is left is not paid out.
    left, after = Fraction(days - 10, days), Fraction(days - 15, days)
    day = f"{canceled_at:%Y-%m-%d}"
    credits = -D(usdc(30 * left)) + D(usdc(90 * left)) - D(usdc(90 * after))
    assert lines(final)[-2:] == [
        (f"Unused time on Pro after {day} ({after} of the period)", "-" + usdc(90 * after)),
        ("Credit left unused: the subscription ended", f"{-credits:f}"),
    ]
    assert credits < 0 and (final.amount, final.status) == ("0.000000", pb.INVOICE_STATUS_PAID)


async def test_metering_enforces_the_new_plans_entitlements_from_the_change(
    merchant: Merchant, catalog: Catalog
) -> None:
    gold = await merchant.plan(
        service_id=catalog.basic.service_id,
        name="Gold",
        pricing_type=pb.PRICING_TYPE_USAGE_BASED,
        amount="0.001",
        features=["sso"],
    )
    subscription = await started(merchant, catalog.basic)

    async def sso() -> "mpb.EntitlementReason.ValueType":
        answer = await merchant.metering.CheckEntitlement(
            mpb.CheckEntitlementRequest(subscription_id=subscription.id, feature="sso"),
            metadata=merchant.metadata,
        )
        return answer.reason

    assert await sso() == mpb.ENTITLEMENT_REASON_FEATURE_NOT_INCLUDED
    await change(merchant, subscription, gold)
    assert await sso() == mpb.ENTITLEMENT_REASON_FEATURE_INCLUDED

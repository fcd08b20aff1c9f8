"""The real-time balance against the invoice: for random workloads (every charge model, tiers
with flat fees, a fixed fee paid up front or not, several event keys), the balance's `consumed`
and lines are exactly what the period's invoice bills once the period closes with no more usage,
and the balance is the credits less that. Invoicing alone: the credits come from a report."""

import random
from dataclasses import dataclass
from decimal import Decimal

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from tests.invoicing.conftest import Merchant
from tests.invoicing.test_billing_flows import MONTH_AND_GRACE

TIERS = [
    pb.Tier(up_to="1000", unit_price="0.002", flat_fee="0.5"),
    pb.Tier(up_to="50000", unit_price="0.0015"),
    pb.Tier(unit_price="0.001", flat_fee="0.25"),
]
MODELS = (
    pb.CHARGE_MODEL_PER_UNIT,
    pb.CHARGE_MODEL_PACKAGE,
    pb.CHARGE_MODEL_GRADUATED,
    pb.CHARGE_MODEL_VOLUME,
)


@dataclass(frozen=True)
class Workload:
    fee: str
    charges: tuple[pb.UsageCharge, ...]
    # Per period, (event key, quantity) in order.
    periods: tuple[tuple[tuple[str, str], ...], ...]


def charge(event_key: str, model: pb.ChargeModel.ValueType, draw: random.Random) -> pb.UsageCharge:
    included = str(draw.choice([0, 0, 100, 2500]))
    if model == pb.CHARGE_MODEL_PER_UNIT:
        return pb.UsageCharge(
            event_key=event_key, model=model, unit_price="0.000013", included_quantity=included
        )
    if model == pb.CHARGE_MODEL_PACKAGE:
        return pb.UsageCharge(
            event_key=event_key, model=model, unit_price="0.04", package_size="1000"
        )
    return pb.UsageCharge(event_key=event_key, model=model, tiers=TIERS, included_quantity=included)


def workloads(count: int) -> list[Workload]:
    draw = random.Random(20261203)
    found = []
    for _ in range(count):
        keys = draw.sample(["tokens", "api_call", "images"], draw.randint(1, 2))
        charges = tuple(charge(key, draw.choice(MODELS), draw) for key in keys)
        periods = tuple(
            tuple(
                (draw.choice(keys), str(Decimal(draw.randint(1, 4_000_000)) / 100))
                for _ in range(draw.randint(1, 6))
            )
            for _ in range(2)
        )
        found.append(Workload(draw.choice(["", "", "19.99"]), charges, periods))
    return found


async def balance_of(merchant: Merchant, subscription: pb.Subscription) -> pb.SubscriptionBalance:
    return await merchant.stub.GetSubscriptionBalance(
        pb.GetSubscriptionBalanceRequest(subscription_id=subscription.id),
        metadata=merchant.metadata,
    )


async def report(merchant: Merchant, user_id: str, balance: str, version: int) -> None:
    await merchant.stub.ReportCreditBalance(
        pb.ReportCreditBalanceRequest(user_id=user_id, balance=balance, version=version),
        metadata=merchant.metadata,
    )


@pytest.mark.parametrize("workload", workloads(8))
async def test_the_balance_is_what_the_invoice_will_bill(
    merchant: Merchant, workload: Workload
) -> None:
    fields: dict[str, object] = {"charges": list(workload.charges)}
    if workload.fee:
        fields.update(pricing_type=pb.PRICING_TYPE_HYBRID, amount=workload.fee)
    else:
        fields.update(pricing_type=pb.PRICING_TYPE_USAGE_BASED)
    plan = await merchant.plan(**fields)
    subscription = await merchant.subscribe(plan)
    version = 0
    for number, events in enumerate(workload.periods):
        for event_key, quantity in events:
            await merchant.record(subscription, event_key, quantity)
        version += 1
        await report(merchant, subscription.user_id, "12.5", version)

        found = await balance_of(merchant, subscription)

        assert (found.subscription_id, found.user_id, found.credit_balance) == (
            subscription.id,
            subscription.user_id,
            "12.500000",
        )
        assert Decimal(found.balance) == Decimal("12.5") - Decimal(found.consumed)
        assert (found.period_start, found.period_end) == (
            subscription.current_period_start,
            subscription.current_period_end,
        )
        # No credits when the period closes (no settlement here to spend them).
        version += 1
        await report(merchant, subscription.user_id, "0", version)
        subscription = await merchant.advance(subscription, MONTH_AND_GRACE)
        invoice = (await merchant.invoices(subscription))[number]
        assert invoice.amount == found.consumed
        assert list(invoice.lines) == list(found.lines)


async def test_nothing_consumed_yet_and_an_unknown_subscription(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await merchant.subscribe(plan)

    found = await balance_of(merchant, subscription)

    assert (found.credit_balance, found.consumed, found.balance) == (
        "0.000000",
        "0.000000",
        "0.000000",
    )
    assert [(line.description, line.amount) for line in found.lines] == [
        ("Usage: 0 x 0.00001", "0.000000")
    ]
    await merchant.record(subscription, "tokens", "70000")
    await report(merchant, subscription.user_id, "0.5", 1)
    found = await balance_of(merchant, subscription)
    assert (found.consumed, found.balance) == ("0.700000", "-0.200000")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await balance_of(merchant, pb.Subscription(id="sub_missing"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

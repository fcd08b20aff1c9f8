"""Plan entitlements on invoicing's side: features and usage limits stored and answered exactly,
refused with the field, changed by UpdatePlan, and every change carried to metering's replica of
each subscription of the plan not canceled (a higher version and an outbox push in the same
transaction), and the pushed state holding them."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.metering.v1 import metering_pb2 as mpb
from invoicing_svc.adapters.metering_client import _state
from invoicing_svc.domain.entitlements import Enforcement, UsageLimit, validate_limits
from invoicing_svc.domain.model import (
    BillingInterval,
    Plan,
    PricingType,
    Subscription,
    SubscriptionStatus,
)
from invoicing_svc.service_layer.unit_of_work import PUSH_SUBSCRIPTION
from service_kit.errors import InvalidArgument
from service_kit.proto_time import to_timestamp
from tests.conftest import field_violation
from tests.invoicing.conftest import Merchant

SOFT, HARD = pb.LIMIT_ENFORCEMENT_SOFT, pb.LIMIT_ENFORCEMENT_HARD


def limit(event_key: str, quantity: str, enforcement: int = HARD) -> pb.UsageLimit:
    return pb.UsageLimit(
        event_key=event_key,
        quantity=quantity,
        enforcement=enforcement,  # type: ignore[arg-type]
    )


async def entitled_plan(merchant: Merchant) -> pb.Plan:
    return await merchant.plan(
        pricing_type=pb.PRICING_TYPE_USAGE_BASED,
        amount="0.000010",
        features=["sso", "gpt-4o", "audit.log"],
        limits=[limit("tokens", "1000000.5", HARD), limit("requests", "0", SOFT)],
    )


async def subscribe(merchant: Merchant, plan: pb.Plan, user_id: str) -> pb.Subscription:
    session = await merchant.checkout(plan, user_id)
    done = await merchant.stub.CompleteCheckoutSession(
        pb.CompleteCheckoutSessionRequest(id=session.id), metadata=merchant.metadata
    )
    return await merchant.stub.GetSubscription(
        pb.GetSubscriptionRequest(id=done.subscription_id), metadata=merchant.metadata
    )


async def update(merchant: Merchant, plan: pb.Plan, *paths: str) -> pb.Plan:
    return await merchant.stub.UpdatePlan(
        pb.UpdatePlanRequest(plan=plan, update_mask=FieldMask(paths=paths)),
        metadata=merchant.metadata,
    )


async def versions(db: asyncpg.Connection, plan_id: str) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT id, version FROM invoicing.subscriptions WHERE plan_id = $1", plan_id
    )
    return {row["id"]: row["version"] for row in rows}


async def pending_pushes(db: asyncpg.Connection, merchant: Merchant) -> list[str]:
    """The subscriptions named by the merchant's undelivered PUSH_SUBSCRIPTION messages."""
    rows = await db.fetch(
        "SELECT payload->>'subscription_id' AS id FROM invoicing.outbox"
        " WHERE merchant_id = $1 AND topic = $2 AND delivered_time IS NULL ORDER BY id",
        merchant.merchant_id,
        PUSH_SUBSCRIPTION,
    )
    return [row["id"] for row in rows]


async def test_a_plans_features_and_limits_are_stored_and_answered_exactly(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    plan = await entitled_plan(merchant)
    assert list(plan.features) == ["sso", "gpt-4o", "audit.log"]
    assert list(plan.limits) == [limit("tokens", "1000000.5", HARD), limit("requests", "0", SOFT)]
    fetched = await merchant.stub.GetPlan(pb.GetPlanRequest(id=plan.id), metadata=merchant.metadata)
    assert fetched == plan
    listed = await merchant.stub.ListPlans(
        pb.ListPlansRequest(service_id=plan.service_id), metadata=merchant.metadata
    )
    assert list(listed.plans) == [plan]
    # Quantities are stored as strings, never as JSON numbers.
    stored = await db.fetchrow(
        "SELECT features, limits::text AS limits FROM invoicing.plans WHERE id = $1", plan.id
    )
    assert stored is not None
    assert (stored["features"], stored["limits"]) == (
        ["sso", "gpt-4o", "audit.log"],
        '[{"quantity": "1000000.5", "event_key": "tokens", "enforcement": "HARD"},'
        ' {"quantity": "0", "event_key": "requests", "enforcement": "SOFT"}]',
    )
    # A plan without entitlements has none.
    bare = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    assert (list(bare.features), list(bare.limits)) == ([], [])


TOO_PRECISE = "0." + "0" * 12 + "1"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"features": [f"f{i}" for i in range(51)]}, "plan.features"),
        ({"features": [""]}, "plan.features[0]"),
        ({"features": ["sso", "-sso"]}, "plan.features[1]"),
        ({"features": ["sso", "x" * 129]}, "plan.features[1]"),
        ({"features": ["sso", "api", "sso"]}, "plan.features[2]"),
        ({"limits": [limit(f"k{i}", "1") for i in range(51)]}, "plan.limits"),
        ({"limits": [limit("", "1")]}, "plan.limits[0].event_key"),
        ({"limits": [limit("tokens", "1"), limit("to kens", "1")]}, "plan.limits[1].event_key"),
        ({"limits": [limit("tokens", "1"), limit("tokens", "2")]}, "plan.limits[1].event_key"),
        ({"limits": [limit("tokens", "")]}, "plan.limits[0].quantity"),
        ({"limits": [limit("tokens", "-1")]}, "plan.limits[0].quantity"),
        ({"limits": [limit("tokens", "NaN")]}, "plan.limits[0].quantity"),
        ({"limits": [limit("tokens", "Infinity")]}, "plan.limits[0].quantity"),
        ({"limits": [limit("tokens", "1e15")]}, "plan.limits[0].quantity"),
        ({"limits": [limit("tokens", "ten")]}, "plan.limits[0].quantity"),
        ({"limits": [limit("tokens", TOO_PRECISE)]}, "plan.limits[0].quantity"),
        (
            {"limits": [limit("tokens", "1", pb.LIMIT_ENFORCEMENT_UNSPECIFIED)]},
            "plan.limits[0].enforcement",
        ),
        ({"limits": [limit("a", "1"), limit("b", "1", 7)]}, "plan.limits[1].enforcement"),
    ],
)
async def test_invalid_entitlements_are_refused_with_the_field(
    merchant: Merchant, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1", **fields)
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        field,
    )


async def test_the_bounds_themselves_are_accepted(merchant: Merchant) -> None:
    plan = await merchant.plan(
        pricing_type=pb.PRICING_TYPE_USAGE_BASED,
        amount="1",
        features=[f"f{i}" for i in range(50)],
        limits=[limit(f"k{i}", "999999999999999.999999999999") for i in range(49)]
        + [limit("tiny", "0.000000000001", SOFT)],
    )
    assert (len(plan.features), len(plan.limits)) == (50, 50)
    assert (plan.limits[0].quantity, plan.limits[49].quantity) == (
        "999999999999999.999999999999",
        "0.000000000001",
    )


async def test_update_plan_changes_the_fields_its_mask_names(merchant: Merchant) -> None:
    plan = await entitled_plan(merchant)
    # Only the features: the limits and the ceiling stay, whatever the message holds.
    changed = await update(
        merchant,
        pb.Plan(id=plan.id, features=["sso"], limits=[limit("x", "1")], usage_ceiling="3"),
        "features",
    )
    expected = pb.Plan()
    expected.CopyFrom(plan)
    del expected.features[:]
    expected.features.append("sso")
    assert changed == expected
    # The limits and the ceiling together; an empty list of limits removes them.
    changed = await update(
        merchant, pb.Plan(id=plan.id, usage_ceiling="1.5"), "limits", "usage_ceiling"
    )
    del expected.limits[:]
    expected.usage_ceiling, expected.auto_pay_cap = "1.500000", "1.500000"
    assert changed == expected
    changed = await update(
        merchant,
        pb.Plan(id=plan.id, features=[], limits=[limit("tokens", "5", SOFT)]),
        "features",
        "limits",
    )
    del expected.features[:]
    expected.limits.append(limit("tokens", "5", SOFT))
    assert changed == expected
    fetched = await merchant.stub.GetPlan(pb.GetPlanRequest(id=plan.id), metadata=merchant.metadata)
    assert fetched == expected


@pytest.mark.parametrize(
    ("paths", "message", "field"),
    [
        ((), pb.Plan(features=["sso"]), "update_mask"),
        (("name",), pb.Plan(name="Renamed"), "update_mask"),
        (("features", "amount"), pb.Plan(features=["sso"], amount="2"), "update_mask"),
        (("features",), pb.Plan(features=["sso", "sso"]), "plan.features[1]"),
        (("limits",), pb.Plan(limits=[limit("tokens", "-1")]), "plan.limits[0].quantity"),
        (("limits",), pb.Plan(limits=[limit("tokens", "1", 0)]), "plan.limits[0].enforcement"),
        (("usage_ceiling", "limits"), pb.Plan(usage_ceiling="0.0000001"), "plan.usage_ceiling"),
    ],
)
async def test_a_refused_update_changes_nothing(
    merchant: Merchant,
    db: asyncpg.Connection,
    paths: tuple[str, ...],
    message: pb.Plan,
    field: str,
) -> None:
    plan = await entitled_plan(merchant)
    subscription = await subscribe(merchant, plan, "usr_refused")
    await merchant.relay()
    before = await versions(db, plan.id)
    message.id = plan.id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(merchant, message, *paths)
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        field,
    )
    fetched = await merchant.stub.GetPlan(pb.GetPlanRequest(id=plan.id), metadata=merchant.metadata)
    assert fetched == plan
    assert await versions(db, plan.id) == before == {subscription.id: 1}
    assert await pending_pushes(db, merchant) == []


async def test_updating_a_missing_or_another_merchants_plan_is_not_found(
    merchant: Merchant,
) -> None:
    plan = await entitled_plan(merchant)
    other = Merchant(merchant.invoicing, merchant.stub, merchant.metering, "mer_other_ent")
    for who, plan_id in ((merchant, "plan_missing"), (other, plan.id)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await update(who, pb.Plan(id=plan_id, features=["sso"]), "features")
        assert (caught.value.code(), field_violation(caught.value)) == (
            grpc.StatusCode.NOT_FOUND,
            "plan.id",
        )
    fetched = await merchant.stub.GetPlan(pb.GetPlanRequest(id=plan.id), metadata=merchant.metadata)
    assert fetched == plan


async def test_new_entitlements_reach_every_subscription_of_the_plan_not_canceled(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    plan = await entitled_plan(merchant)
    first = await subscribe(merchant, plan, "usr_first")
    second = await subscribe(merchant, plan, "usr_second")
    canceled = await subscribe(merchant, plan, "usr_gone")
    other_plan = await entitled_plan(merchant)
    elsewhere = await subscribe(merchant, other_plan, "usr_first")
    await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=canceled.id), metadata=merchant.metadata
    )
    # Ends at its period's end: still a subscription metering enforces limits for.
    await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=second.id, at_period_end=True), metadata=merchant.metadata
    )
    await merchant.relay()
    before = await versions(db, plan.id)
    assert before == {first.id: 1, second.id: 2, canceled.id: 2}
    assert await pending_pushes(db, merchant) == []

    new_limits = [limit("tokens", "250", SOFT), limit("images", "10", HARD)]
    await update(
        merchant,
        pb.Plan(id=plan.id, features=["sso", "batch"], limits=new_limits),
        "features",
        "limits",
    )

    assert await versions(db, plan.id) == {first.id: 2, second.id: 3, canceled.id: 2}
    assert await versions(db, other_plan.id) == {elsewhere.id: 1}
    assert await pending_pushes(db, merchant) == sorted([first.id, second.id])

    # What the relay will send metering for them: the new versions with the new entitlements.
    async with merchant.invoicing.unit_of_work() as uow:
        found = await uow.subscriptions.subscriptions_by_id(merchant.merchant_id, [first.id])
        stored_plan = await uow.catalog.plan(merchant.merchant_id, plan.id)
    assert stored_plan is not None
    assert stored_plan.features == ("sso", "batch")
    assert stored_plan.limits == (
        UsageLimit("tokens", Decimal(250), Enforcement.SOFT),
        UsageLimit("images", Decimal(10), Enforcement.HARD),
    )
    (subscription,) = found
    assert _state(subscription, stored_plan, None) == mpb.SubscriptionState(
        subscription_id=first.id,
        service_id=plan.service_id,
        user_id="usr_first",
        status=mpb.SUBSCRIPTION_STATUS_ACTIVE,
        current_period_start=first.current_period_start,
        current_period_end=first.current_period_end,
        version=2,
        features=["sso", "batch"],
        limits=[
            mpb.UsageLimit(
                event_key="tokens", quantity="250", enforcement=mpb.LIMIT_ENFORCEMENT_SOFT
            ),
            mpb.UsageLimit(
                event_key="images", quantity="10", enforcement=mpb.LIMIT_ENFORCEMENT_HARD
            ),
        ],
    )
    await merchant.relay()
    assert await pending_pushes(db, merchant) == []


async def test_an_update_that_leaves_the_entitlements_as_they_are_pushes_nothing(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    plan = await entitled_plan(merchant)
    subscription = await subscribe(merchant, plan, "usr_same")
    await merchant.relay()
    await update(merchant, pb.Plan(id=plan.id, usage_ceiling="2"), "usage_ceiling")
    await update(merchant, plan, "features", "limits")
    assert await versions(db, plan.id) == {subscription.id: 1}
    assert await pending_pushes(db, merchant) == []


async def test_every_push_carries_the_plans_entitlements() -> None:
    """The state of a subscription pushed by checkout, cancellation, the period close and the
    relay is built by one function from the subscription and its plan."""
    start, end = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)
    plan = Plan(
        id="plan_1",
        merchant_id="mer_1",
        service_id="svc_1",
        name="Pro",
        pricing_type=PricingType.USAGE_BASED,
        billing_interval=BillingInterval.MONTH,
        interval_count=1,
        amount=Decimal(1),
        charges=(),
        create_time=start,
        features=("sso",),
        limits=(UsageLimit("tokens", Decimal("0.500000000000"), Enforcement.HARD),),
    )
    subscription = Subscription(
        id="sub_1",
        merchant_id="mer_1",
        service_id="svc_1",
        plan_id="plan_1",
        user_id="usr_1",
        status=SubscriptionStatus.ACTIVE,
        billing_anchor=start,
        period_index=0,
        current_period_start=start,
        current_period_end=end,
        cancel_at_period_end=False,
        fee_prepaid_until=None,
        version=7,
        create_time=start,
    )
    assert _state(subscription, plan, None) == mpb.SubscriptionState(
        subscription_id="sub_1",
        service_id="svc_1",
        user_id="usr_1",
        status=mpb.SUBSCRIPTION_STATUS_ACTIVE,
        current_period_start=to_timestamp(start),
        current_period_end=to_timestamp(end),
        version=7,
        features=["sso"],
        limits=[
            mpb.UsageLimit(
                event_key="tokens", quantity="0.5", enforcement=mpb.LIMIT_ENFORCEMENT_HARD
            )
        ],
    )
    with pytest.raises(ValueError, match="plan plan_2"):
        _state(subscription, replace(plan, id="plan_2"), None)


@pytest.mark.parametrize("quantity", ["NaN", "-1", "1E+15", "0.0000000000001", "Infinity"])
def test_a_limit_built_in_code_is_held_to_the_same_rule(quantity: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_limits([UsageLimit("tokens", Decimal(quantity), Enforcement.SOFT)])
    assert caught.value.field == "plan.limits[0].quantity"
    validate_limits(
        [UsageLimit("tokens", Decimal("999999999999999.999999999999"), Enforcement.SOFT)]
    )

"""Plan versions and migrations through invoicing's gRPC API, with real metering and PostgreSQL
(issue 18): new prices make a new version, subscriptions keep theirs until migrated at their
next period, checkouts get the latest, and a dry run shows each next invoice on both."""

import grpc

from billing.invoicing.v1 import invoicing_pb2 as pb
from tests.invoicing.conftest import Merchant, refused
from tests.invoicing.test_plan_changes import (
    lines,
    own_now,
    period_invoice,
    started,
    to_next_period,
    tokens,
)


def charge(price: str) -> pb.UsageCharge:
    return pb.UsageCharge(event_key="tokens", model=pb.CHARGE_MODEL_PER_UNIT, unit_price=price)


async def first_version(merchant: Merchant) -> pb.Plan:
    return await merchant.plan(
        name="Basic", pricing_type=pb.PRICING_TYPE_HYBRID, amount="30", charges=[charge("0.001")]
    )


async def new_version(merchant: Merchant, plan: pb.Plan, **prices: object) -> pb.Plan:
    return await merchant.stub.CreatePlanVersion(
        pb.CreatePlanVersionRequest(plan_id=plan.id, **prices),  # type: ignore[arg-type]
        metadata=merchant.metadata,
    )


async def migrate(
    merchant: Merchant, plan: pb.Plan, **fields: object
) -> pb.MigratePlanSubscriptionsResponse:
    return await merchant.stub.MigratePlanSubscriptions(
        pb.MigratePlanSubscriptionsRequest(plan_id=plan.id, **fields),  # type: ignore[arg-type]
        metadata=merchant.metadata,
    )


def outcomes(response: pb.MigratePlanSubscriptionsResponse) -> list[tuple[str, str, str, int, str]]:
    return [
        (m.subscription_id, m.current_amount, m.migrated_amount, m.outcome, m.reason)
        for m in response.migrations
    ]


async def test_a_version_is_migrated_at_the_next_period_after_a_dry_run(
    merchant: Merchant,
) -> None:
    v1 = await first_version(merchant)
    moving = await started(merchant, v1)
    ending = await started(merchant, v1)
    await merchant.stub.CancelSubscription(
        pb.CancelSubscriptionRequest(id=ending.id, at_period_end=True), metadata=merchant.metadata
    )
    await tokens(merchant, moving, 1000, own_now(moving))

    v2 = await new_version(merchant, v1, amount="40", charges=[charge("0.002")])

    assert (v2.version, v2.version_of, v2.superseded_by, v2.name) == (2, v1.id, "", "Basic")
    got = await merchant.stub.GetPlan(pb.GetPlanRequest(id=v1.id), metadata=merchant.metadata)
    assert (got.version, got.superseded_by) == (1, v2.id)
    # A checkout naming the first version subscribes to the latest.
    assert (await merchant.checkout(v1)).plan_id == v2.id

    dry = await migrate(merchant, v1, dry_run=True)

    scheduled, skipped = pb.MIGRATION_OUTCOME_SCHEDULED, pb.MIGRATION_OUTCOME_SKIPPED
    expected = [
        (moving.id, "31.000000", "42.000000", scheduled, ""),
        (ending.id, "30.000000", "40.000000", skipped, "ends at its period's end"),
    ]
    assert (dry.to_plan_id, outcomes(dry)) == (v2.id, expected)
    unchanged = await merchant.stub.GetSubscription(
        pb.GetSubscriptionRequest(id=moving.id), metadata=merchant.metadata
    )
    assert unchanged.scheduled_plan_id == ""

    done = await migrate(merchant, v1)

    assert outcomes(done) == expected
    following = await to_next_period(merchant, moving)
    assert (following.plan_id, following.scheduled_plan_id) == (v2.id, "")
    assert lines(await period_invoice(merchant, moving)) == [
        ("tokens: 1000 (per_unit)", "1.000000")
    ]
    await to_next_period(merchant, following)
    assert lines(await period_invoice(merchant, following)) == [
        ("Basic: fixed fee", "40.000000"),
        ("tokens: 0 (per_unit)", "0.000000"),
    ]


async def test_a_migration_goes_page_by_page(merchant: Merchant) -> None:
    v1 = await first_version(merchant)
    subscriptions = [await started(merchant, v1) for _ in range(3)]
    await new_version(merchant, v1, amount="35", charges=[charge("0.001")])

    first = await migrate(merchant, v1, page_size=2)
    rest = await migrate(merchant, v1, page_size=2, page_token=first.next_page_token)

    assert [m.subscription_id for m in first.migrations] == [s.id for s in subscriptions[:2]]
    assert ([m.subscription_id for m in rest.migrations], rest.next_page_token) == (
        [subscriptions[2].id],
        "",
    )


async def test_what_versions_and_migrations_refuse(merchant: Merchant) -> None:
    v1 = await first_version(merchant)
    other = await first_version(merchant)
    await new_version(merchant, v1, amount="35", charges=[charge("0.001")])

    assert await refused(new_version(merchant, v1, amount="36", charges=[charge("0.001")])) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "plan_id",
    )
    assert await refused(new_version(merchant, other, amount="36")) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "plan.charges",
    )
    assert await refused(migrate(merchant, v1, to_plan_id=other.id)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "to_plan_id",
    )
    assert await refused(migrate(merchant, v1, to_plan_id=v1.id)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "to_plan_id",
    )
    assert await refused(migrate(merchant, pb.Plan(id="plan_missing"))) == (
        grpc.StatusCode.NOT_FOUND,
        "plan_id",
    )

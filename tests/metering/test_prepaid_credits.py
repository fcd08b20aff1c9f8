"""Prepaid-only subscriptions at ingestion, through the real gRPC server: an event the
subscriber's credits cannot pay for is refused, to the base unit, with the plan's charges
priced as the invoice prices them (tiers, included units, the simple unit price of every key),
the closed period counted until its invoice spent the credits, and also when two metering
replicas ingest for the subscription at once."""

import random
from datetime import datetime, timedelta
from decimal import Decimal

import grpc
import pytest

from billing.metering.v1 import metering_pb2 as pb
from pricing.charges import PricingModel, Tier, UsageCharge, usage_cost
from pricing.messages import charge_to_proto
from service_kit.proto_time import to_timestamp
from tests.conftest import TEST_START, field_violation
from tests.metering.conftest import Tenant, race_two_replicas
from tests.metering.test_aggregations import create_meter

ACCEPTED, REJECTED = pb.USAGE_EVENT_OUTCOME_ACCEPTED, pb.USAGE_EVENT_OUTCOME_REJECTED
# Before any tenant's period starts: a valid `since`.
EARLY = TEST_START - timedelta(days=20)
PER_TOKEN = UsageCharge("token_generated", PricingModel.PER_UNIT, unit_price=Decimal("0.001"))


def allowance(
    credits: str, charges: list[UsageCharge], since: datetime | None = None
) -> pb.PrepaidAllowance:
    message = pb.PrepaidAllowance(
        credits=credits, charges=[charge_to_proto(charge) for charge in charges]
    )
    if since is not None:
        message.since.CopyFrom(to_timestamp(since))
    return message


async def prepay(
    tenant: Tenant,
    version: int,
    credits: str,
    charges: list[UsageCharge],
    *,
    since: datetime | None = None,
    start: datetime | None = None,
) -> pb.SubscriptionState:
    """The tenant's replica, prepaid-only, its period starting at `start`."""
    begins = start or tenant.period_start
    prepaid = allowance(credits, charges, since or begins)
    return await tenant.set_state(pb.SUBSCRIPTION_STATUS_ACTIVE, version, begins, prepaid=prepaid)


async def refused(tenant: Tenant, quantity: str, **fields: object) -> str:
    """The message of the event's refusal: FAILED_PRECONDITION naming the quantity."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.record(quantity, **fields)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert field_violation(caught.value) == "quantity"
    return str(caught.value.details())


async def test_the_replica_keeps_the_allowance(tenant: Tenant) -> None:
    stored = await prepay(tenant, 2, "12.5", [PER_TOKEN])

    assert stored.prepaid.credits == "12.5"
    assert stored.prepaid.since == to_timestamp(tenant.period_start)
    assert [(c.event_key, c.model, c.unit_price) for c in stored.prepaid.charges] == [
        ("token_generated", pb.PRICING_MODEL_PER_UNIT, "0.001")
    ]


async def test_usage_burns_the_credits_down_and_stops_exactly_at_zero(tenant: Tenant) -> None:
    await prepay(tenant, 2, "1", [PER_TOKEN])

    assert (await tenant.record("600")).outcome == ACCEPTED
    assert (await tenant.record("400")).outcome == ACCEPTED  # 1.000000: all of it
    assert await refused(tenant, "1") == (
        "the plan is prepaid-only and the subscriber's credits are 1.000000 USDC: this event "
        "would take the cost of the usage they pay for from 1.000000 to 1.001000 USDC"
    )
    summary = await tenant.summary(tenant.period_start, tenant.period_end)
    assert summary["token_generated"].value == "1000"


async def test_a_top_up_pushed_with_a_newer_version_lets_usage_go_on(tenant: Tenant) -> None:
    await prepay(tenant, 2, "0.5", [PER_TOKEN])
    await tenant.record("500")
    await refused(tenant, "0.001")

    await prepay(tenant, 3, "0.5001", [PER_TOKEN])

    assert (await tenant.record("0.1")).outcome == ACCEPTED
    await refused(tenant, "0.001")


async def test_tiers_and_included_units_are_priced_as_the_invoice_prices_them(
    tenant: Tenant,
) -> None:
    graduated = UsageCharge(
        "token_generated",
        PricingModel.GRADUATED,
        tiers=(Tier(Decimal(1000), Decimal("0.001")), Tier(None, Decimal("0.0005"))),
        included_quantity=Decimal(100),
    )
    await prepay(tenant, 2, "1.2", [graduated])

    # 100 free, the next 1,000 at 0.001 (1.0), then 400 at 0.0005 (0.2): 1.2 exactly.
    for quantity in ("100", "1000", "400"):
        assert (await tenant.record(quantity)).outcome == ACCEPTED
    await refused(tenant, "1")
    assert usage_cost([graduated], {"token_generated": Decimal(1500)}) == Decimal("1.2")


async def test_a_simple_unit_price_prices_every_key_together(tenant: Tenant) -> None:
    every_key = UsageCharge("", PricingModel.PER_UNIT, unit_price=Decimal("0.01"))
    await prepay(tenant, 2, "1", [every_key])

    assert (await tenant.record("60", event_key="image")).outcome == ACCEPTED
    assert (await tenant.record("40")).outcome == ACCEPTED
    error = await refused(tenant, "1", event_key="audio_second")

    assert "from 1.000000 to 1.010000 USDC" in error


async def test_a_batch_fills_the_credits_one_event_at_a_time(tenant: Tenant) -> None:
    await prepay(tenant, 2, "1", [PER_TOKEN])

    answer = await tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(
            events=[tenant.event(q) for q in ("700", "400", "300", "0.5")]
        ),
        metadata=tenant.metadata,
    )

    assert [r.outcome for r in answer.results] == [ACCEPTED, REJECTED, ACCEPTED, REJECTED]
    assert answer.results[1].error.field == "quantity"
    summary = await tenant.summary(tenant.period_start, tenant.period_end)
    assert summary["token_generated"].value == "1000"


async def test_a_retry_of_a_recorded_event_is_a_duplicate_never_refused(tenant: Tenant) -> None:
    await prepay(tenant, 2, "1", [PER_TOKEN])
    first = await tenant.record("1000", idempotency_key="req-1")

    again = await tenant.record("1000", idempotency_key="req-1")

    assert again.outcome == pb.USAGE_EVENT_OUTCOME_DUPLICATE
    assert again.event_id == first.event_id


async def _period(
    tenant: Tenant, version: int, start: datetime, end: datetime, prepaid: pb.PrepaidAllowance
) -> None:
    state = tenant.state(pb.SUBSCRIPTION_STATUS_ACTIVE, version, start, prepaid=prepaid)
    state.current_period_end.CopyFrom(to_timestamp(end))
    await tenant.stub.UpsertSubscriptionState(
        pb.UpsertSubscriptionStateRequest(state=state), metadata=tenant.metadata
    )


async def test_the_closed_period_counts_until_its_invoice_spent_the_credits(
    tenant: Tenant,
) -> None:
    """Invoicing pushes the next period before it reads the closed one's usage; until the
    balance after its invoice arrives, the allowance counts from the closed period's start, so
    the credits are never spent twice."""
    closed_start, opened = tenant.period_start - timedelta(days=30), tenant.period_start
    await _period(tenant, 2, closed_start, opened, allowance("1", [PER_TOKEN], closed_start))
    in_closed = to_timestamp(opened - timedelta(hours=1))
    assert (await tenant.record("700", occurred_at=in_closed)).outcome == ACCEPTED

    # The next period is open, and the credits are still those before the close.
    await _period(tenant, 3, opened, tenant.period_end, allowance("1", [PER_TOKEN], closed_start))
    assert (await tenant.record("300")).outcome == ACCEPTED
    blocked = await refused(tenant, "1")
    assert "from 1.000000 to 1.001000 USDC" in blocked

    # The invoice spent 0.7: 0.3 are left, which the open period has used.
    await _period(tenant, 4, opened, tenant.period_end, allowance("0.3", [PER_TOKEN], opened))
    assert "from 0.300000 to 0.301000 USDC" in await refused(tenant, "1")


async def test_included_units_of_each_period_are_their_own(tenant: Tenant) -> None:
    """The closed period and the open one are priced apart: each has its included units."""
    free_100 = UsageCharge(
        "token_generated",
        PricingModel.PER_UNIT,
        unit_price=Decimal("0.01"),
        included_quantity=Decimal(100),
    )
    closed_start, opened = tenant.period_start - timedelta(days=30), tenant.period_start
    await _period(tenant, 2, closed_start, opened, allowance("1", [free_100], closed_start))
    await tenant.record("150", occurred_at=to_timestamp(opened - timedelta(hours=1)))  # 0.5
    await _period(tenant, 3, opened, tenant.period_end, allowance("1", [free_100], closed_start))

    # 100 free again, then 50 at 0.01 (0.5): 1.0 in all.
    assert (await tenant.record("150")).outcome == ACCEPTED
    assert "from 1.000000 to 1.010000 USDC" in await refused(tenant, "1")


async def test_unique_values_are_charged_once(tenant: Tenant) -> None:
    await create_meter(tenant, "seat", pb.AGGREGATION_UNIQUE_COUNT, "user")
    per_seat = UsageCharge("seat", PricingModel.PER_UNIT, unit_price=Decimal("0.25"))
    await prepay(tenant, 2, "0.5", [per_seat])

    for user in ("ana", "ben", "ana", "ben"):
        answer = await tenant.record("1", event_key="seat", properties={"user": user})
        assert answer.outcome == ACCEPTED
    error = await refused(tenant, "1", event_key="seat", properties={"user": "cy"})

    assert "from 0.500000 to 0.750000 USDC" in error


@pytest.mark.parametrize(
    ("prepaid", "field"),
    [
        (pb.PrepaidAllowance(credits="1"), "state.prepaid.since"),
        (allowance("-1", [PER_TOKEN], EARLY), "state.prepaid.credits"),
        (allowance("0.0000001", [PER_TOKEN], EARLY), "state.prepaid.credits"),
        (allowance("1", [], EARLY), "state.prepaid.charges"),
        (allowance("1", [PER_TOKEN, PER_TOKEN], EARLY), "state.prepaid.charges[1].event_key"),
        (
            allowance("1", [UsageCharge("a", PricingModel.PACKAGE, Decimal(1))], EARLY),
            "state.prepaid.charges[0].package_size",
        ),
    ],
)
async def test_a_bad_allowance_is_refused_and_nothing_is_stored(
    tenant: Tenant, prepaid: pb.PrepaidAllowance, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.set_state(pb.SUBSCRIPTION_STATUS_ACTIVE, 2, prepaid=prepaid)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(caught.value) == field
    assert (await tenant.record("1000000")).outcome == ACCEPTED  # still not prepaid


async def test_since_after_the_period_start_is_refused(tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await prepay(tenant, 2, "1", [PER_TOKEN], since=tenant.period_start + timedelta(days=1))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(caught.value) == "state.prepaid.since"


async def test_two_replicas_ingesting_at_once_never_spend_more_than_the_credits(
    tenant: Tenant, database_url: str
) -> None:
    """Single events and batches race on two metering servers: the stored usage costs at most
    the credits, and every refused event would not have fit even at the end."""
    credits = Decimal("1")
    await prepay(tenant, 2, str(credits), [PER_TOKEN])
    rng = random.Random(23)
    quantities = [str(Decimal(rng.randint(1, 2_000)) / 100) for _ in range(240)]
    accepted, rejected = await race_two_replicas(tenant, database_url, quantities)
    stored = Decimal(
        (await tenant.summary(tenant.period_start, tenant.period_end))["token_generated"].value
    )
    cost = usage_cost([PER_TOKEN], {"token_generated": stored})
    assert stored == sum(accepted)
    assert cost <= credits
    assert rejected, "the workload must use up the credits"
    assert all(usage_cost([PER_TOKEN], {"token_generated": stored + q}) > credits for q in rejected)


async def test_the_check_answers_what_the_credits_can_still_pay_for(tenant: Tenant) -> None:
    await prepay(tenant, 2, "1", [PER_TOKEN])
    await tenant.record("600")

    async def check(quantity: str) -> pb.CheckEntitlementResponse:
        return await tenant.stub.CheckEntitlement(
            pb.CheckEntitlementRequest(
                subscription_id=tenant.subscription_id,
                event_key="token_generated",
                quantity=quantity,
            ),
            metadata=tenant.metadata,
        )

    fits, too_much = await check("400"), await check("400.5")

    assert (fits.allowed, fits.reason, fits.credits_left) == (
        True,
        pb.ENTITLEMENT_REASON_NO_LIMIT,
        "0.400000",
    )
    assert (too_much.allowed, too_much.reason, too_much.credits_left) == (
        False,
        pb.ENTITLEMENT_REASON_INSUFFICIENT_CREDITS,
        "0.400000",
    )
    # Another key costs nothing on this plan: it always fits.
    other = await tenant.stub.CheckEntitlement(
        pb.CheckEntitlementRequest(
            subscription_id=tenant.subscription_id, event_key="image", quantity="1000000"
        ),
        metadata=tenant.metadata,
    )
    assert (other.allowed, other.credits_left) == (True, "0.400000")

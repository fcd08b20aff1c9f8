"""Entitlements through the real gRPC server: the features and limits a subscription's replica
carries, CheckEntitlement's answers, and hard limits enforced at ingestion, also by two metering
replicas ingesting for one subscription at once."""

import random
from datetime import timedelta
from decimal import Decimal

import grpc
import pytest

from billing.metering.v1 import metering_pb2 as pb
from metering_svc.service_layer.unit_of_work import Metering
from service_kit.proto_time import to_timestamp
from tests.metering.conftest import Tenant, field_violation, race_two_replicas
from tests.metering.test_aggregations import create_meter

SOFT, HARD = pb.LIMIT_ENFORCEMENT_SOFT, pb.LIMIT_ENFORCEMENT_HARD
R = pb.EntitlementReason


def limit(
    event_key: str, quantity: str, enforcement: "pb.LimitEnforcement.ValueType"
) -> pb.UsageLimit:
    return pb.UsageLimit(event_key=event_key, quantity=quantity, enforcement=enforcement)


async def entitle(
    tenant: Tenant,
    version: int,
    *,
    features: list[str] | None = None,
    limits: list[pb.UsageLimit] | None = None,
    status: "pb.SubscriptionStatus.ValueType" = pb.SUBSCRIPTION_STATUS_ACTIVE,
) -> pb.SubscriptionState:
    return await tenant.set_state(status, version, features=features or [], limits=limits or [])


async def check(
    tenant: Tenant, *, feature: str = "", event_key: str = "", quantity: str = ""
) -> pb.CheckEntitlementResponse:
    return await tenant.stub.CheckEntitlement(
        pb.CheckEntitlementRequest(
            subscription_id=tenant.subscription_id,
            feature=feature,
            event_key=event_key,
            quantity=quantity,
        ),
        metadata=tenant.metadata,
    )


async def test_the_replica_keeps_the_plans_features_and_limits(tenant: Tenant) -> None:
    stored = await entitle(
        tenant,
        2,
        features=["sso", "priority_support"],
        limits=[limit("token_generated", "1000.5", HARD), limit("api_call", "10", SOFT)],
    )

    assert list(stored.features) == ["sso", "priority_support"]
    assert [(x.event_key, x.quantity, x.enforcement) for x in stored.limits] == [
        ("token_generated", "1000.5", HARD),
        ("api_call", "10", SOFT),
    ]
    # An older version changes nothing.
    older = await entitle(tenant, 1, features=[])
    assert list(older.features) == ["sso", "priority_support"]


@pytest.mark.parametrize(
    ("features", "limits", "field"),
    [
        (["sso", "sso"], [], "state.features[1]"),
        (["not an id!"], [], "state.features[0]"),
        ([], [limit("a", "1", HARD), limit("a", "2", SOFT)], "state.limits[1].event_key"),
        ([], [limit("a", "-1", HARD)], "state.limits[0].quantity"),
        ([], [limit("a", "0.0000000000001", HARD)], "state.limits[0].quantity"),
        ([], [limit("a", "1", pb.LIMIT_ENFORCEMENT_UNSPECIFIED)], "state.limits[0].enforcement"),
        ([f"f{i}" for i in range(51)], [], "state.features"),
    ],
)
async def test_bad_entitlements_are_refused_and_nothing_is_stored(
    tenant: Tenant, features: list[str], limits: list[pb.UsageLimit], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await entitle(tenant, 2, features=features, limits=limits)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(refused.value) == field
    assert (await check(tenant, feature="sso")).reason == R.ENTITLEMENT_REASON_FEATURE_NOT_INCLUDED


async def test_features_are_included_or_not(tenant: Tenant) -> None:
    await entitle(tenant, 2, features=["sso"])

    included = await check(tenant, feature="sso")
    missing = await check(tenant, feature="audit_log")

    assert (included.allowed, included.reason) == (True, R.ENTITLEMENT_REASON_FEATURE_INCLUDED)
    assert (missing.allowed, missing.reason) == (False, R.ENTITLEMENT_REASON_FEATURE_NOT_INCLUDED)
    assert included.period_start == to_timestamp(tenant.period_start)
    assert included.period_end == to_timestamp(tenant.period_end)


async def test_a_limit_answers_used_remaining_and_whether_the_quantity_fits(
    tenant: Tenant,
) -> None:
    await entitle(
        tenant,
        2,
        limits=[limit("token_generated", "100", HARD), limit("image", "2", SOFT)],
    )
    await tenant.record("60.25")
    await tenant.record("1", event_key="image")
    await tenant.record("1", event_key="image")

    # This replica's own events count at once, cached answers notwithstanding.
    fits = await check(tenant, event_key="token_generated", quantity="39.75")
    past = await check(tenant, event_key="token_generated", quantity="39.750000000001")
    soft = await check(tenant, event_key="image")
    free = await check(tenant, event_key="embedding", quantity="1000000")

    assert (fits.allowed, fits.reason) == (True, R.ENTITLEMENT_REASON_WITHIN_LIMIT)
    assert (fits.limit, fits.used, fits.remaining, fits.enforcement) == (
        "100",
        "60.25",
        "39.75",
        HARD,
    )
    assert (past.allowed, past.reason) == (False, R.ENTITLEMENT_REASON_HARD_LIMIT_EXCEEDED)
    assert (soft.allowed, soft.reason) == (True, R.ENTITLEMENT_REASON_SOFT_LIMIT_EXCEEDED)
    assert (soft.used, soft.remaining, soft.enforcement) == ("2", "0", SOFT)
    assert (free.allowed, free.reason, free.limit, free.remaining) == (
        True,
        R.ENTITLEMENT_REASON_NO_LIMIT,
        "",
        "",
    )
    assert free.enforcement == pb.LIMIT_ENFORCEMENT_UNSPECIFIED


async def test_an_inactive_subscription_is_refused(tenant: Tenant) -> None:
    await entitle(tenant, 2, features=["sso"], status=pb.SUBSCRIPTION_STATUS_PAST_DUE)

    answer = await check(tenant, feature="sso")
    usage = await check(tenant, event_key="token_generated")

    assert (answer.allowed, answer.reason) == (False, R.ENTITLEMENT_REASON_SUBSCRIPTION_INACTIVE)
    assert (usage.allowed, usage.reason) == (False, R.ENTITLEMENT_REASON_SUBSCRIPTION_INACTIVE)


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({}, grpc.StatusCode.INVALID_ARGUMENT, "event_key"),
        ({"feature": "sso", "event_key": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "event_key"),
        ({"feature": "sso", "quantity": "1"}, grpc.StatusCode.INVALID_ARGUMENT, "quantity"),
        ({"event_key": "x", "quantity": "-1"}, grpc.StatusCode.INVALID_ARGUMENT, "quantity"),
        ({"event_key": "x", "quantity": "NaN"}, grpc.StatusCode.INVALID_ARGUMENT, "quantity"),
        ({"feature": "bad feature"}, grpc.StatusCode.INVALID_ARGUMENT, "feature"),
    ],
)
async def test_a_bad_check_is_refused(
    tenant: Tenant, fields: dict[str, str], code: grpc.StatusCode, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(tenant, **fields)

    assert refused.value.code() == code
    assert field_violation(refused.value) == field


async def test_another_merchants_subscription_is_not_found_even_when_cached(
    tenant: Tenant,
) -> None:
    await entitle(tenant, 2, features=["sso"])
    assert (await check(tenant, feature="sso")).allowed

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await tenant.stub.CheckEntitlement(
            pb.CheckEntitlementRequest(subscription_id=tenant.subscription_id, feature="sso"),
            metadata=(("x-merchant-id", "mer_attacker"),),
        )

    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert field_violation(refused.value) == "subscription_id"


def refused_by_limit(metering: Metering) -> float:
    value = metering.metrics.registry.get_sample_value(
        "usage_events_refused_by_limit_total", {"service": "metering_svc"}
    )
    return value or 0.0


async def test_ingestion_refuses_events_past_a_hard_limit_and_names_it(
    tenant: Tenant, metering: Metering
) -> None:
    before = refused_by_limit(metering)
    await entitle(tenant, 2, limits=[limit("token_generated", "10", HARD)])
    await tenant.record("9.5", idempotency_key="first")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await tenant.record("0.500000000001")
    batch = await tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(
            events=[
                tenant.event("0.25"),
                tenant.event("0.5"),  # 10.25: refused
                tenant.event("0.25"),  # 10: fits
                tenant.event("9.5", idempotency_key="first"),  # a retry: never refused
                tenant.event("7", event_key="unlimited"),
            ]
        ),
        metadata=tenant.metadata,
    )

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert field_violation(refused.value) == "quantity"
    assert refused.value.details() == (
        "the plan's hard limit on token_generated is 10 per billing period: this event would "
        "take its usage from 9.5 to 10.000000000001"
    )
    outcomes = [result.outcome for result in batch.results]
    assert outcomes == [
        pb.USAGE_EVENT_OUTCOME_ACCEPTED,
        pb.USAGE_EVENT_OUTCOME_REJECTED,
        pb.USAGE_EVENT_OUTCOME_ACCEPTED,
        pb.USAGE_EVENT_OUTCOME_DUPLICATE,
        pb.USAGE_EVENT_OUTCOME_ACCEPTED,
    ]
    assert batch.results[1].error.code == "FAILED_PRECONDITION"
    found = await tenant.summary(tenant.period_start, tenant.period_end)
    assert found["token_generated"].value == "10"
    assert found["unlimited"].value == "7"
    assert refused_by_limit(metering) - before == 2


async def test_each_aggregation_is_limited_by_what_an_event_can_make_of_it(
    tenant: Tenant,
) -> None:
    await create_meter(tenant, "api_call", pb.AGGREGATION_COUNT)
    await create_meter(tenant, "gb_peak", pb.AGGREGATION_MAX)
    await create_meter(tenant, "seats", pb.AGGREGATION_LAST)
    await create_meter(tenant, "visitor", pb.AGGREGATION_UNIQUE_COUNT, unique_property="ip")
    await entitle(
        tenant,
        2,
        limits=[
            limit("api_call", "2", HARD),
            limit("gb_peak", "5", HARD),
            limit("seats", "3", HARD),
            limit("visitor", "2", HARD),
        ],
    )
    events = [
        tenant.event("1000", event_key="api_call"),
        tenant.event("1000", event_key="api_call"),
        tenant.event("1", event_key="api_call"),  # a third call
        tenant.event("5", event_key="gb_peak"),
        tenant.event("5.1", event_key="gb_peak"),
        tenant.event("3", event_key="seats"),
        tenant.event("4", event_key="seats"),
        # Distinct values of "ip": a repeat or an event without it adds nothing.
        tenant.event("1", event_key="visitor", properties={"ip": "a"}),
        tenant.event("1", event_key="visitor", properties={"ip": "a"}),
        # Hours back: read from the hourly value sets.
        tenant.event(
            "1",
            event_key="visitor",
            properties={"ip": "b"},
            occurred_at=to_timestamp(tenant.period_start + timedelta(hours=2)),
        ),
        tenant.event("1", event_key="visitor"),
        tenant.event("1", event_key="visitor", properties={"ip": "c"}),
    ]
    batch = await tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(events=events), metadata=tenant.metadata
    )

    A, X = pb.USAGE_EVENT_OUTCOME_ACCEPTED, pb.USAGE_EVENT_OUTCOME_REJECTED
    assert [r.outcome for r in batch.results] == [A, A, X, A, X, A, X, A, A, A, A, X]
    # Stored values count as seen: "b" again fits, a new "d" does not.
    later = await tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(
            events=[
                tenant.event("1", event_key="visitor", properties={"ip": "b"}),
                tenant.event("1", event_key="visitor", properties={"ip": "d"}),
            ]
        ),
        metadata=tenant.metadata,
    )
    assert [r.outcome for r in later.results] == [A, X]
    visitors = await check(tenant, event_key="visitor")
    assert (visitors.allowed, visitors.used, visitors.remaining) == (False, "2", "0")
    assert visitors.reason == R.ENTITLEMENT_REASON_HARD_LIMIT_EXCEEDED


async def test_a_soft_limit_records_and_bills_everything(tenant: Tenant) -> None:
    await entitle(tenant, 2, limits=[limit("token_generated", "1", SOFT)])

    for _ in range(3):
        await tenant.record("1")

    found = await tenant.summary(tenant.period_start, tenant.period_end)
    assert found["token_generated"].value == "3"


async def test_two_replicas_ingesting_at_once_never_pass_a_hard_limit(
    tenant: Tenant, database_url: str
) -> None:
    """Single events (grouped per replica), batches and streams race on two metering servers:
    the stored total never passes the limit, equals what was accepted, and every refused event
    would indeed not have fit even at the end."""
    cap = Decimal("500")
    await entitle(tenant, 2, limits=[limit("token_generated", str(cap), HARD)])
    rng = random.Random(17)
    quantities = [str(Decimal(rng.randint(1, 2_000)) / 100) for _ in range(240)]
    accepted, refused = await race_two_replicas(tenant, database_url, quantities)
    stored = Decimal(
        (await tenant.summary(tenant.period_start, tenant.period_end))["token_generated"].value
    )
    assert stored == sum(accepted)
    assert stored <= cap
    assert refused, "the workload must reach the limit"
    assert all(stored + q > cap for q in refused)

"""The batch RPCs of the period close and of invoicing's outbox: summaries of many windows,
replicas of many subscriptions and invoices."""

from __future__ import annotations

import random
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest

from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from service_kit.grpc_errors import field_of
from service_kit.proto_time import to_timestamp
from tests.metering.conftest import Tenant
from tests.metering.test_summaries import RAW_TRUTH, plain


def window(
    subscription_id: str, start: datetime, end: datetime, event_key: str = ""
) -> pb.GetUsageSummaryRequest:
    return pb.GetUsageSummaryRequest(
        subscription_id=subscription_id,
        event_key=event_key,
        start_time=to_timestamp(start),
        end_time=to_timestamp(end),
    )


def state(tenant: Tenant, subscription_id: str, version: int = 1) -> pb.SubscriptionState:
    return pb.SubscriptionState(
        subscription_id=subscription_id,
        service_id=tenant.service_id,
        user_id=tenant.user_id,
        status=pb.SUBSCRIPTION_STATUS_ACTIVE,
        current_period_start=to_timestamp(tenant.period_start),
        current_period_end=to_timestamp(tenant.period_end),
        version=version,
    )


async def refused(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    """The status of a call that must fail, and the field its details name ("" for none)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), field_of(caught.value)


async def test_batch_summaries_equal_sql_over_raw_events_per_window(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    rng = random.Random(7)
    start = tenant.period_start
    events = [
        tenant.event(
            f"{rng.randint(0, 900)}.{rng.randint(0, 999):03d}",
            event_key=rng.choice(["token_generated", "gb_stored"]),
            occurred_at=start + timedelta(seconds=rng.randint(0, 2 * 24 * 3600)),
        )
        for _ in range(1500)
    ]
    recorded = await tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(events=events), metadata=tenant.metadata
    )
    for result in recorded.results[:150]:
        await tenant.stub.CancelUsageEvent(
            pb.CancelUsageEventRequest(id=result.event_id), metadata=tenant.metadata
        )
    # Cut through hours, aligned with them, inside one hour, and the same window twice.
    windows = [
        (start, start + timedelta(days=2)),
        (start + timedelta(hours=3, minutes=7, seconds=11), start + timedelta(days=1, minutes=3)),
        (start + timedelta(hours=20, minutes=5), start + timedelta(hours=20, minutes=55)),
        (start, start + timedelta(days=2)),
    ]

    response = await tenant.stub.BatchGetUsageSummaries(
        pb.BatchGetUsageSummariesRequest(
            requests=[window(tenant.subscription_id, lo, hi) for lo, hi in windows]
        ),
        metadata=tenant.metadata,
    )

    assert len(response.responses) == len(windows)
    for (lo, hi), answer in zip(windows, response.responses, strict=True):
        assert (answer.start_time, answer.end_time) == (to_timestamp(lo), to_timestamp(hi))
        truth = await db.fetch(RAW_TRUTH, tenant.subscription_id, lo, hi)
        assert [(s.event_key, s.value, s.event_count, s.max, s.last) for s in answer.summaries] == [
            (
                row["event_key"],
                plain(row["total"]),
                row["events"],
                plain(row["peak"]),
                plain(row["last"]),
            )
            for row in sorted(truth, key=lambda row: str(row["event_key"]))
        ]


async def test_batch_summaries_of_one_key_and_of_several_subscriptions(tenant: Tenant) -> None:
    other = f"{tenant.subscription_id}_b"
    await tenant.stub.UpsertSubscriptionState(
        pb.UpsertSubscriptionStateRequest(state=state(tenant, other)), metadata=tenant.metadata
    )
    moment = tenant.period_start + timedelta(hours=2)
    await tenant.record("1.5", occurred_at=moment)
    await tenant.record("4", event_key="gb_stored", occurred_at=moment)
    await tenant.record("2.25", subscription_id=other, occurred_at=moment)
    lo, hi = tenant.period_start, tenant.period_end

    response = await tenant.stub.BatchGetUsageSummaries(
        pb.BatchGetUsageSummariesRequest(
            requests=[
                window(tenant.subscription_id, lo, hi),
                window(other, lo, hi),
                window(tenant.subscription_id, lo, hi, event_key="gb_stored"),
                window(other, lo, hi, event_key="gb_stored"),
            ]
        ),
        metadata=tenant.metadata,
    )

    assert [[(s.event_key, s.value) for s in r.summaries] for r in response.responses] == [
        [("gb_stored", "4"), ("token_generated", "1.5")],
        [("token_generated", "2.25")],
        [("gb_stored", "4")],
        [("gb_stored", "0")],
    ]


async def test_batch_summaries_refuse_bad_requests_by_position(tenant: Tenant) -> None:
    lo, hi = tenant.period_start, tenant.period_end
    good = window(tenant.subscription_id, lo, hi)

    def batch(*requests: pb.GetUsageSummaryRequest) -> Awaitable[Any]:
        return tenant.stub.BatchGetUsageSummaries(
            pb.BatchGetUsageSummariesRequest(requests=requests), metadata=tenant.metadata
        )

    assert await refused(batch()) == (grpc.StatusCode.INVALID_ARGUMENT, "requests")
    assert await refused(batch(*[good] * 1001)) == (grpc.StatusCode.INVALID_ARGUMENT, "requests")
    assert await refused(batch(good, window(tenant.subscription_id, hi, lo))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "requests[1].end_time",
    )
    assert await refused(batch(good, pb.GetUsageSummaryRequest(subscription_id="sub_x"))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "requests[1].start_time",
    )
    assert await refused(batch(good, good, window("sub x", lo, hi))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "requests[2].subscription_id",
    )
    assert await refused(batch(good, good, window("sub_nowhere", lo, hi))) == (
        grpc.StatusCode.NOT_FOUND,
        "requests[2].subscription_id",
    )
    assert len((await batch(*[good] * 1000)).responses) == 1000


async def test_a_batch_never_answers_for_another_merchants_subscription(
    tenant: Tenant, metering_stub: metering_pb2_grpc.MeteringServiceAsyncStub
) -> None:
    await tenant.record("9", occurred_at=tenant.period_start + timedelta(hours=1))
    lo, hi = tenant.period_start, tenant.period_end
    intruder = (("x-merchant-id", "mer_intruder"),)
    own = f"{tenant.subscription_id}_intruders"
    await metering_stub.UpsertSubscriptionState(
        pb.UpsertSubscriptionStateRequest(state=state(tenant, own)),
        metadata=intruder,
    )

    asked = metering_stub.BatchGetUsageSummaries(
        pb.BatchGetUsageSummariesRequest(
            requests=[window(own, lo, hi), window(tenant.subscription_id, lo, hi)]
        ),
        metadata=intruder,
    )

    assert await refused(asked) == (grpc.StatusCode.NOT_FOUND, "requests[1].subscription_id")
    alone = await metering_stub.BatchGetUsageSummaries(
        pb.BatchGetUsageSummariesRequest(requests=[window(own, lo, hi)]),
        metadata=intruder,
    )
    assert [list(r.summaries) for r in alone.responses] == [[]]


async def test_batch_upsert_stores_every_state_or_none(tenant: Tenant) -> None:
    fresh = f"{tenant.subscription_id}_new"
    # The tenant's subscription is at version 1: version 3 wins, then version 2 is ignored.
    stored = await tenant.stub.BatchUpsertSubscriptionStates(
        pb.BatchUpsertSubscriptionStatesRequest(
            states=[state(tenant, tenant.subscription_id, version=3), state(tenant, fresh)]
        ),
        metadata=tenant.metadata,
    )
    assert [(s.subscription_id, s.version) for s in stored.states] == [
        (tenant.subscription_id, 3),
        (fresh, 1),
    ]
    older = state(tenant, tenant.subscription_id, version=2)
    older.status = pb.SUBSCRIPTION_STATUS_CANCELED
    again = await tenant.stub.BatchUpsertSubscriptionStates(
        pb.BatchUpsertSubscriptionStatesRequest(states=[older]), metadata=tenant.metadata
    )
    assert [(s.version, s.status) for s in again.states] == [(3, pb.SUBSCRIPTION_STATUS_ACTIVE)]

    # Another merchant's subscription refuses the whole batch: the fresh state stays at 1.
    intruder = (("x-merchant-id", "mer_intruder"),)
    held = f"{tenant.subscription_id}_intruders"
    await tenant.stub.UpsertSubscriptionState(
        pb.UpsertSubscriptionStateRequest(state=state(tenant, held)),
        metadata=intruder,
    )
    mixed = tenant.stub.BatchUpsertSubscriptionStates(
        pb.BatchUpsertSubscriptionStatesRequest(
            states=[state(tenant, fresh, version=5), state(tenant, held, 9)]
        ),
        metadata=tenant.metadata,
    )
    assert await refused(mixed) == (grpc.StatusCode.PERMISSION_DENIED, "")
    after = await tenant.stub.BatchUpsertSubscriptionStates(
        pb.BatchUpsertSubscriptionStatesRequest(states=[state(tenant, fresh, version=1)]),
        metadata=tenant.metadata,
    )
    assert [s.version for s in after.states] == [1]


async def test_batch_upsert_refuses_bad_states_by_position(tenant: Tenant) -> None:
    def batch(*states: pb.SubscriptionState) -> Awaitable[Any]:
        return tenant.stub.BatchUpsertSubscriptionStates(
            pb.BatchUpsertSubscriptionStatesRequest(states=states), metadata=tenant.metadata
        )

    good = state(tenant, tenant.subscription_id, version=2)
    unversioned = state(tenant, "sub_other", version=0)
    no_status = state(tenant, "sub_other")
    no_status.status = pb.SUBSCRIPTION_STATUS_UNSPECIFIED
    no_end = state(tenant, "sub_other")
    no_end.ClearField("current_period_end")

    assert await refused(batch()) == (grpc.StatusCode.INVALID_ARGUMENT, "states")
    assert await refused(batch(*[good] * 1001)) == (grpc.StatusCode.INVALID_ARGUMENT, "states")
    assert await refused(batch(good, good)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "states[1].subscription_id",
    )
    assert await refused(batch(good, unversioned)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "states[1].version",
    )
    assert await refused(batch(no_status)) == (grpc.StatusCode.INVALID_ARGUMENT, "states[0].status")
    assert await refused(batch(good, no_end)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "states[1].current_period_end",
    )
    # Nothing of the refused batches was stored.
    answer = await tenant.set_state(pb.SUBSCRIPTION_STATUS_ACTIVE, version=1)
    assert answer.version == 1


def reference(tenant: Tenant, invoice_id: str, **fields: str) -> pb.InvoiceReference:
    values = {"invoice_id": invoice_id, "service_id": tenant.service_id, "user_id": tenant.user_id}
    values.update(fields)
    return pb.InvoiceReference(**values)


def upsert_references(tenant: Tenant, *references: pb.InvoiceReference) -> Awaitable[Any]:
    return tenant.stub.BatchUpsertInvoiceReferences(
        pb.BatchUpsertInvoiceReferencesRequest(references=references), metadata=tenant.metadata
    )


async def stored_references(db: asyncpg.Connection, tenant: Tenant) -> list[tuple[str, ...]]:
    rows = await db.fetch(
        "SELECT id, service_id, user_id FROM metering.invoice_references"
        " WHERE merchant_id = $1 ORDER BY id",
        tenant.merchant_id,
    )
    return [tuple(row) for row in rows]


async def test_batch_references_are_stored_in_order_and_a_repeat_changes_nothing(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    first, second = f"in_{tenant.merchant_id}_b", f"in_{tenant.merchant_id}_a"
    batch = [reference(tenant, first), reference(tenant, second, user_id="usr_other")]
    answer = await upsert_references(tenant, *batch)
    again = await upsert_references(tenant, *batch)
    assert list(answer.references) == list(again.references) == batch
    assert await stored_references(db, tenant) == [
        (second, tenant.service_id, "usr_other"),
        (first, tenant.service_id, tenant.user_id),
    ]
    # As UpsertInvoiceReference, a reference is rewritten, and events link to it.
    moved = await upsert_references(tenant, reference(tenant, second))
    assert list(moved.references) == [reference(tenant, second)]
    linked = await tenant.record("2", invoice_id=second)
    assert linked.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED


async def test_batch_references_refuse_bad_items_by_position_and_store_none(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    good = reference(tenant, f"in_{tenant.merchant_id}_good")
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert await refused(upsert_references(tenant)) == (invalid, "references")
    assert await refused(upsert_references(tenant, *[good] * 1001)) == (invalid, "references")
    assert await refused(upsert_references(tenant, good, good)) == (
        invalid,
        "references[1].invoice_id",
    )
    assert await refused(upsert_references(tenant, good, reference(tenant, ""))) == (
        invalid,
        "references[1].invoice_id",
    )
    assert await refused(
        upsert_references(tenant, good, reference(tenant, "in_x", user_id="usr\x00"))
    ) == (invalid, "references[1].user_id")
    assert await refused(
        upsert_references(tenant, good, pb.InvoiceReference(invoice_id="in_y", user_id="usr_1"))
    ) == (invalid, "references[1].service_id")
    # Another merchant's invoice refuses the whole batch.
    held = f"in_{tenant.merchant_id}_held"
    await tenant.stub.UpsertInvoiceReference(
        pb.UpsertInvoiceReferenceRequest(invoice=reference(tenant, held)),
        metadata=(("x-merchant-id", "mer_intruder"),),
    )
    assert await refused(upsert_references(tenant, good, reference(tenant, held))) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "",
    )
    assert await stored_references(db, tenant) == []

"""Recording events: one, concurrent with shared idempotency keys, batches and streams."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import asyncpg

from billing.metering.v1 import metering_pb2 as pb
from tests.metering.conftest import Tenant


async def stored_totals(db: asyncpg.Connection, subscription_id: str) -> tuple[int, Decimal]:
    row = await db.fetchrow(
        "SELECT count(*), coalesce(sum(quantity), 0) FROM metering.usage_events "
        "WHERE subscription_id = $1",
        subscription_id,
    )
    assert row is not None
    return row[0], row[1]


async def test_2000_concurrent_calls_with_500_shared_keys_count_each_key_once(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    # 1,500 distinct keys; 500 calls repeat one of the first 500 keys, racing the original.
    calls = [(f"req-{i}", f"{i}.000001") for i in range(1500)]
    calls += [(f"req-{i}", f"{i}.000001") for i in range(500)]
    semaphore = asyncio.Semaphore(200)

    async def send(key: str, quantity: str) -> pb.RecordUsageEventResponse:
        async with semaphore:
            return await tenant.record(quantity, idempotency_key=key)

    responses = await asyncio.gather(*(send(key, quantity) for key, quantity in calls))

    outcomes = [r.outcome for r in responses]
    assert outcomes.count(pb.USAGE_EVENT_OUTCOME_ACCEPTED) == 1500
    assert outcomes.count(pb.USAGE_EVENT_OUTCOME_DUPLICATE) == 500
    # Both calls with one key answer with the id of the one stored event.
    by_key: dict[str, set[str]] = {}
    for (key, _), response in zip(calls, responses, strict=True):
        by_key.setdefault(key, set()).add(response.event_id)
    assert all(len(ids) == 1 for ids in by_key.values())
    assert await stored_totals(db, tenant.subscription_id) == (1500, Decimal("1124250.0015"))
    found = await tenant.summary(tenant.period_start, tenant.period_end)
    assert found["token_generated"].value == "1124250.0015"
    assert found["token_generated"].event_count == 1500


async def test_a_retry_after_the_first_call_committed_is_a_duplicate(tenant: Tenant) -> None:
    first = await tenant.record("5000", idempotency_key="resp-81")
    again = await tenant.record("5000", idempotency_key="resp-81")

    assert first.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED
    assert again.outcome == pb.USAGE_EVENT_OUTCOME_DUPLICATE
    assert again.event_id == first.event_id


async def test_a_batch_stores_valid_events_and_answers_each_one(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    earlier = await tenant.record("1", idempotency_key="k-0")
    events = [
        tenant.event("10.5", idempotency_key="k-1"),
        tenant.event("-1", idempotency_key="k-2"),
        tenant.event("2", idempotency_key="k-0"),
        tenant.event("0.25"),
        tenant.event("3", idempotency_key="k-1"),
        tenant.event("4", user_id="usr_somebody_else"),
        tenant.event("0.000000000001", event_key="gb_transferred"),
    ]

    response = await tenant.stub.BatchRecordUsageEvents(
        pb.BatchRecordUsageEventsRequest(events=events), metadata=tenant.metadata
    )

    results = response.results
    assert [r.index for r in results] == list(range(7))
    assert [r.outcome for r in results] == [
        pb.USAGE_EVENT_OUTCOME_ACCEPTED,
        pb.USAGE_EVENT_OUTCOME_REJECTED,
        pb.USAGE_EVENT_OUTCOME_DUPLICATE,
        pb.USAGE_EVENT_OUTCOME_ACCEPTED,
        pb.USAGE_EVENT_OUTCOME_DUPLICATE,
        pb.USAGE_EVENT_OUTCOME_REJECTED,
        pb.USAGE_EVENT_OUTCOME_ACCEPTED,
    ]
    assert (results[1].error.code, results[1].error.field) == ("INVALID_ARGUMENT", "quantity")
    assert (results[5].error.code, results[5].error.field) == ("INVALID_ARGUMENT", "user_id")
    assert results[2].event_id == earlier.event_id
    assert results[4].event_id == results[0].event_id
    assert (response.accepted_count, response.duplicate_count, response.rejected_count) == (3, 2, 2)
    assert await stored_totals(db, tenant.subscription_id) == (4, Decimal("11.750000000001"))


async def test_a_stream_is_answered_in_order_after_commit(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    def events() -> list[pb.UsageEventInput]:
        sent = [tenant.event("1.5", idempotency_key=f"s-{i}") for i in range(2500)]
        sent[7] = tenant.event("1.5", idempotency_key="s-3")
        sent[11] = tenant.event("NaN")
        return sent

    requests = [pb.StreamUsageEventsRequest(event=event) for event in events()]
    results = [
        r.result
        async for r in tenant.stub.StreamUsageEvents(iter(requests), metadata=tenant.metadata)
    ]

    assert [r.index for r in results] == list(range(2500))
    assert results[7].outcome == pb.USAGE_EVENT_OUTCOME_DUPLICATE
    assert results[7].event_id == results[3].event_id
    assert results[11].outcome == pb.USAGE_EVENT_OUTCOME_REJECTED
    accepted = [r for r in results if r.outcome == pb.USAGE_EVENT_OUTCOME_ACCEPTED]
    assert len(accepted) == 2498
    assert await stored_totals(db, tenant.subscription_id) == (2498, Decimal("3747"))


async def test_events_default_to_now_and_land_in_the_right_partition(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    response = await tenant.record("1")
    backdated = await tenant.record("2", occurred_at=tenant.period_start)

    partition = await db.fetchval(
        "SELECT tableoid::regclass::text FROM metering.usage_events WHERE id = $1",
        response.event_id,
    )
    older = await db.fetchval(
        "SELECT tableoid::regclass::text FROM metering.usage_events WHERE id = $1",
        backdated.event_id,
    )
    assert partition == "metering.usage_events_2026_11"
    assert older == "metering.usage_events_2026_11"
    listed = await tenant.stub.ListUsageEvents(
        pb.ListUsageEventsRequest(subscription_id=tenant.subscription_id), metadata=tenant.metadata
    )
    assert [e.id for e in listed.events] == [backdated.event_id, response.event_id]
    assert listed.events[1].occurred_at.ToDatetime().isoformat() == "2026-11-26T10:30:00"
    assert listed.events[0].quantity == "2"


async def test_listing_pages_through_every_event_once(tenant: Tenant) -> None:
    for minutes in range(7):
        await tenant.record(
            str(minutes), occurred_at=tenant.period_start + timedelta(minutes=minutes)
        )
    seen: list[str] = []
    token = ""
    while True:
        page = await tenant.stub.ListUsageEvents(
            pb.ListUsageEventsRequest(
                subscription_id=tenant.subscription_id, page_size=3, page_token=token
            ),
            metadata=tenant.metadata,
        )
        seen += [e.quantity for e in page.events]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["0", "1", "2", "3", "4", "5", "6"]

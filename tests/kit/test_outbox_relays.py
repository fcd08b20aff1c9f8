"""The outbox relay (service_kit/outbox.py): a handler call per topic and merchant, delivery
marks in one statement, each message delivered exactly once by several relay loops, and a
failing message retried later on its own without holding the others back; a message its
consumer refused for good is parked as a dead letter until an operator retries it."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import MetaData, Table, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from service_kit.clock import ManualClock
from service_kit.database import create_engine, session_factory
from service_kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from service_kit.outbox import (
    Handler,
    Outbox,
    OutboxMessage,
    OutboxRelay,
    outbox_table,
    retry_dead_letters,
)

SCHEMA = "relay_test"
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
POISON = 13


@dataclass
class Outboxes:
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    # The text of every UPDATE of the outbox table.
    updates: list[str]


@pytest.fixture
async def outboxes(database_url: str, db: asyncpg.Connection) -> AsyncIterator[Outboxes]:
    await db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    table: Table = outbox_table(MetaData(), SCHEMA)
    engine = create_engine(database_url, pool_size=5)
    updates: list[str] = []

    def record(_: Any, __: Any, statement: str, *args: Any) -> None:
        if statement.startswith(f"UPDATE {SCHEMA}.outbox"):
            updates.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(table.metadata.create_all)
        yield Outboxes(session_factory(engine), Outbox(table), updates)
    finally:
        await engine.dispose()
        await db.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


async def add(outboxes: Outboxes, messages: Sequence[tuple[str, str, int]]) -> None:
    """(merchant, topic, number) each."""
    async with outboxes.sessions() as session, session.begin():
        for merchant_id, topic, number in messages:
            await outboxes.outbox.add(session, merchant_id, topic, {"number": number}, NOW)


async def test_a_batch_per_topic_and_merchant_and_a_poison_message_alone(
    outboxes: Outboxes, db: asyncpg.Connection
) -> None:
    topics, merchants = ("replica", "ledger", "webhook"), ("mer_1", "mer_2")
    # Interleaved: consecutive ids alternate merchant and topic.
    await add(
        outboxes,
        [
            (merchants[number % 2], topics[number % 3], number)
            for number in range(180)  # 30 of each topic and merchant
        ],
    )
    calls: list[tuple[str, str, list[int]]] = []

    def handler(topic: str) -> Handler:
        async def handle(_: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
            numbers = [message.payload["number"] for message in messages]
            calls.append((topic, messages[0].merchant_id, numbers))
            if POISON in numbers:
                raise RuntimeError("the consumer refuses 13")

        return handle

    relay = OutboxRelay(
        outboxes.sessions,
        outboxes.outbox,
        {topic: handler(topic) for topic in topics},
        ManualClock(NOW),
    )
    assert await relay.relay_once() == 179
    assert await relay.relay_once() == 0  # 13 waits for its backoff
    rows = await db.fetch(
        f"SELECT payload->>'number' AS number, attempts, delivered_time, last_error,"
        f" available_time FROM {SCHEMA}.outbox ORDER BY id"
    )

    def group(first: int) -> tuple[str, str, list[int]]:
        """The messages of the topic and merchant of message `first`."""
        same = [n for n in range(180) if (n % 3, n % 2) == (first % 3, first % 2)]
        return topics[first % 3], merchants[first % 2], same

    # In the order of their first message; 13 is in the second group (ledger, mer_2), which
    # fails whole and is then delivered one message at a time.
    poisoned = group(POISON)
    assert calls == [
        group(0),
        poisoned,
        *[(poisoned[0], poisoned[1], [n]) for n in poisoned[2]],
        *[group(first) for first in range(2, 6)],
    ]
    # One UPDATE marks the 179 delivered, one postpones 13.
    assert len(outboxes.updates) == 2
    by_number = {int(row["number"]): row for row in rows}
    poison = by_number.pop(POISON)
    assert (poison["attempts"], poison["delivered_time"], poison["last_error"]) == (
        1,
        None,
        "the consumer refuses 13",
    )
    assert poison["available_time"] > NOW
    assert {(row["attempts"], row["delivered_time"]) for row in by_number.values()} == {(1, NOW)}


async def test_four_relays_deliver_each_message_once(
    outboxes: Outboxes, db: asyncpg.Connection
) -> None:
    await add(outboxes, [("mer_1", "count", number) for number in range(400)])
    delivered: Counter[int] = Counter()

    async def count(_: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        await asyncio.sleep(0.001)  # a consumer's round trip: the relays interleave
        numbers = [message.payload["number"] for message in messages]
        if POISON in numbers:
            raise RuntimeError("the consumer is down")
        delivered.update(numbers)

    relay = OutboxRelay(
        outboxes.sessions, outboxes.outbox, {"count": count}, ManualClock(NOW), batch_size=25
    )

    async def drain() -> int:
        total = 0
        while moved := await relay.relay_once():
            total += moved
        return total

    per_relay = await asyncio.gather(*(drain() for _ in range(4)))
    retried = await db.fetchrow(
        f"SELECT attempts, last_error FROM {SCHEMA}.outbox WHERE payload->>'number' = '13'"
    )
    assert sum(per_relay) == 399
    assert len([moved for moved in per_relay if moved > 0]) >= 2
    assert {number: times for number, times in delivered.items() if times != 1} == {}
    assert sorted(delivered) == [n for n in range(400) if n != POISON]
    assert retried is not None
    assert (retried["attempts"], retried["last_error"]) == (1, "the consumer is down")


def refusing(refused: set[int], error: Exception) -> Handler:
    """A consumer that fails every call holding a message numbered in `refused` with `error`."""

    async def handle(_: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        if refused & {message.payload["number"] for message in messages}:
            raise error

    return handle


async def outcomes(db: asyncpg.Connection) -> dict[int, tuple[Any, ...]]:
    """Per message number: attempts, delivered_time, dead_time, last_error, due now."""
    rows = await db.fetch(
        f"SELECT payload->>'number' AS number, attempts, delivered_time, dead_time, last_error,"
        f" available_time <= $1 AS due FROM {SCHEMA}.outbox ORDER BY id",
        NOW,
    )
    return {int(row["number"]): tuple(row)[1:] for row in rows}


async def test_a_refused_message_is_parked_alone_and_delivered_when_retried_after_a_fix(
    outboxes: Outboxes, db: asyncpg.Connection
) -> None:
    await add(outboxes, [("mer_1", "ledger", number) for number in range(5)])
    refused = {3}
    handler = refusing(refused, FailedPrecondition("settlement refused: amount must be below 1"))
    clock = ManualClock(NOW)
    relay = OutboxRelay(outboxes.sessions, outboxes.outbox, {"ledger": handler}, clock)
    with capture_logs() as logs:
        delivered = await relay.relay_once()
    clock.advance(timedelta(days=30))
    later = await relay.relay_once()
    parked = await outcomes(db)

    assert (delivered, later) == (4, 0)
    assert parked.pop(3) == (1, None, NOW, "settlement refused: amount must be below 1", True)
    assert set(parked.values()) == {(1, NOW, None, None, True)}
    assert [
        (log["log_level"], log["topic"], log["merchant_id"], log["error"])
        for log in logs
        if log["event"] == "outbox.dead_letter"
    ] == [("error", "ledger", "mer_1", "settlement refused: amount must be below 1")]
    assert not [log for log in logs if log["event"] == "outbox.retry"]

    # The cause is fixed; the operator's retry makes the message due for the next pass.
    refused.clear()
    (poison_id,) = await db.fetch(f"SELECT id FROM {SCHEMA}.outbox WHERE dead_time IS NOT NULL")
    retried = await retry_dead_letters(outboxes.sessions, outboxes.outbox.table, poison_id["id"])
    again = await retry_dead_letters(outboxes.sessions, outboxes.outbox.table, None)
    assert (retried, again) == ([poison_id["id"]], [])
    assert (await outcomes(db))[3] == (
        1,
        None,
        None,
        "settlement refused: amount must be below 1",
        True,
    )
    assert await relay.relay_once() == 1
    assert (await outcomes(db))[3][:3] == (2, clock.now(), None)


@pytest.mark.parametrize(
    ("error", "parked"),
    [
        (InvalidArgument("invoices[0].amount must be below 1000000000000000"), True),
        (FailedPrecondition("invoicing refused: invoice in_1 is VOID"), True),
        (AlreadyExists("the invoice exists"), True),
        (PermissionDenied("another merchant's invoice"), True),
        (NotFound("invoice in_missing not found"), True),
        (Unavailable("settlement is unavailable (UNAVAILABLE); retry later"), False),
        (RuntimeError("connection reset"), False),
    ],
)
async def test_only_a_refusal_is_parked_a_consumer_away_is_retried(
    outboxes: Outboxes, db: asyncpg.Connection, error: Exception, parked: bool
) -> None:
    await add(outboxes, [("mer_1", "ledger", 1)])
    refused = {1}
    clock = ManualClock(NOW)
    relay = OutboxRelay(
        outboxes.sessions, outboxes.outbox, {"ledger": refusing(refused, error)}, clock
    )
    assert await relay.relay_once() == 0
    attempts, _, dead_time, last_error, due = (await outcomes(db))[1]
    assert (attempts, dead_time, last_error) == (1, NOW if parked else None, str(error))
    # A parked message stays due but is never taken; a postponed one waits for its backoff.
    assert due is parked
    refused.clear()
    clock.advance(timedelta(minutes=5))
    assert await relay.relay_once() == (0 if parked else 1)
    dead = await db.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE dead_time IS NOT NULL")
    assert dead == (1 if parked else 0)


async def test_retrying_all_makes_every_dead_letter_due_and_no_other(
    outboxes: Outboxes, db: asyncpg.Connection
) -> None:
    await add(outboxes, [("mer_1", "ledger", number) for number in range(4)])
    handler = refusing({1, 2}, InvalidArgument("refused"))
    relay = OutboxRelay(outboxes.sessions, outboxes.outbox, {"ledger": handler}, ManualClock(NOW))
    assert await relay.relay_once() == 2
    ids = await db.fetch(f"SELECT id FROM {SCHEMA}.outbox WHERE dead_time IS NOT NULL ORDER BY id")
    retried = await retry_dead_letters(outboxes.sessions, outboxes.outbox.table, None)
    assert retried == [row["id"] for row in ids]
    assert len(retried) == 2
    assert (
        await db.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE dead_time IS NOT NULL") == 0
    )

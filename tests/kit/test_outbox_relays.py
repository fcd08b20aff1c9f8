"""The outbox relay (service_kit/outbox.py): a handler call per topic and merchant, delivery
marks in one statement, each message delivered exactly once by several relay loops, and a
failing message retried later on its own without holding the others back."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import MetaData, Table, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service_kit.clock import ManualClock
from service_kit.database import create_engine, session_factory
from service_kit.outbox import Handler, Outbox, OutboxMessage, OutboxRelay, outbox_table

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

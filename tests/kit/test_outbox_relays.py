"""Several relay loops on one outbox (service_kit/outbox.py): each message is delivered exactly
once, and a failing one is retried later without holding the others back."""

import asyncio
from collections import Counter
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import MetaData

from service_kit.clock import ManualClock
from service_kit.database import create_engine, session_factory
from service_kit.outbox import Outbox, OutboxMessage, OutboxRelay, outbox_table

SCHEMA = "relay_test"
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


async def test_four_relays_deliver_each_message_once(
    database_url: str, db: asyncpg.Connection
) -> None:
    await db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    table = outbox_table(MetaData(), SCHEMA)
    engine = create_engine(database_url, pool_size=5)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(table.metadata.create_all)
        sessions = session_factory(engine)
        outbox = Outbox(table)
        async with sessions() as session, session.begin():
            for number in range(400):
                await outbox.add(session, "mer_1", "count", {"number": number}, NOW)
        delivered: Counter[int] = Counter()

        async def count(_: object, message: OutboxMessage) -> None:
            await asyncio.sleep(0.001)  # a consumer's round trip: the relays interleave
            if message.payload["number"] == 13:
                raise RuntimeError("the consumer is down")
            delivered[message.payload["number"]] += 1

        relay = OutboxRelay(sessions, outbox, {"count": count}, ManualClock(NOW), batch_size=25)

        async def drain() -> int:
            total = 0
            while moved := await relay.relay_once():
                total += moved
            return total

        per_relay = await asyncio.gather(*(drain() for _ in range(4)))
        retried = await db.fetchrow(
            f"SELECT attempts, last_error FROM {SCHEMA}.outbox WHERE payload->>'number' = '13'"
        )
    finally:
        await engine.dispose()
        await db.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    assert sum(per_relay) == 399
    assert len([moved for moved in per_relay if moved > 0]) >= 2
    assert {number: times for number, times in delivered.items() if times != 1} == {}
    assert sorted(delivered) == [n for n in range(400) if n != 13]
    assert retried is not None
    assert (retried["attempts"], retried["last_error"]) == (1, "the consumer is down")

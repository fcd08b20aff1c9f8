"""Transactional outbox: a side effect is written in the transaction of the state change that
causes it, then delivered at least once by a relay; consumers must be idempotent.

Each service keeps the table in its own schema. Relays of several replicas share the work with
`FOR UPDATE SKIP LOCKED`; a failed message is retried with exponential backoff and jitter.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service_kit.background import every
from service_kit.clock import Clock

log = structlog.get_logger()

MAX_BACKOFF = timedelta(minutes=5)


def outbox_table(metadata: MetaData, schema: str) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("merchant_id", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("create_time", DateTime(timezone=True), nullable=False),
        Column("available_time", DateTime(timezone=True), nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("delivered_time", DateTime(timezone=True)),
        Column("last_error", Text),
        schema=schema,
    )


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    merchant_id: str
    topic: str
    payload: dict[str, Any]


# A handler gets the relay's session: database work it does commits with the delivery mark.
Handler = Callable[[AsyncSession, OutboxMessage], Awaitable[None]]


def backoff(attempts: int) -> timedelta:
    """Exponential from one second, capped, with full jitter."""
    ceiling = min(MAX_BACKOFF.total_seconds(), 2.0**attempts)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


class Outbox:
    def __init__(self, table: Table) -> None:
        self.table = table

    async def add(
        self,
        session: AsyncSession,
        merchant_id: str,
        topic: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> None:
        await session.execute(
            insert(self.table).values(
                merchant_id=merchant_id,
                topic=topic,
                payload=payload,
                create_time=now,
                available_time=now,
            )
        )


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        handlers: Mapping[str, Handler],
        clock: Clock,
        batch_size: int = 100,
    ) -> None:
        self._sessions = sessions
        self._table = outbox.table
        self._handlers = handlers
        self._clock = clock
        self._batch_size = batch_size

    async def relay_once(self) -> int:
        """Delivers the messages that are due; returns how many were delivered."""
        now = self._clock.now()
        delivered = 0
        async with self._sessions() as session, session.begin():
            rows = await session.execute(
                select(self._table)
                .where(self._table.c.delivered_time.is_(None), self._table.c.available_time <= now)
                .order_by(self._table.c.id)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            )
            for row in rows.all():
                message = OutboxMessage(row.id, row.merchant_id, row.topic, row.payload)
                try:
                    async with session.begin_nested():
                        await self._handlers[message.topic](session, message)
                except Exception as error:
                    log.warning(
                        "outbox.retry", topic=message.topic, id=message.id, error=str(error)
                    )
                    await session.execute(
                        update(self._table)
                        .where(self._table.c.id == message.id)
                        .values(
                            attempts=row.attempts + 1,
                            available_time=now + backoff(row.attempts + 1),
                            last_error=str(error)[:2000],
                        )
                    )
                else:
                    await session.execute(
                        update(self._table)
                        .where(self._table.c.id == message.id)
                        .values(delivered_time=now, attempts=row.attempts + 1)
                    )
                    delivered += 1
        return delivered


def start_relays(relay: OutboxRelay, interval: float, workers: int) -> list[asyncio.Task[None]]:
    """`workers` relay loops at once. Each claims its own due messages (SKIP LOCKED), so a backlog
    drains `workers` round trips at a time; delivery is one consumer call per message, so one
    loop alone is bound by their latency. Messages may then arrive out of their order, which every
    consumer allows: they are idempotent, and replica states carry versions."""
    return [
        asyncio.create_task(every(interval, "outbox_relay", relay.relay_once))
        for _ in range(workers)
    ]

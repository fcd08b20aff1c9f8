"""Transactional outbox: a side effect is written in the transaction of the state change that
causes it, then delivered at least once by a relay; consumers must be idempotent.

Each service keeps the table in its own schema. Relays of several replicas share the work with
`FOR UPDATE SKIP LOCKED`. A handler delivers a group of messages of one topic and one merchant at
once (a batch call to the consumer); when the group fails, each of its messages is tried alone,
so one bad message cannot hold back the others, and a failed one is retried later with
exponential backoff and jitter.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
    any_,
    cast,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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


# A handler delivers messages of one topic and one merchant, in id order, all or none; it gets
# the relay's session: database work it does commits with the delivery mark.
Handler = Callable[[AsyncSession, Sequence[OutboxMessage]], Awaitable[None]]


def one_at_a_time(
    deliver: Callable[[AsyncSession, OutboxMessage], Awaitable[None]],
) -> Handler:
    """A handler for a consumer without a batch call: one call per message."""

    async def handle(session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        for message in messages:
            await deliver(session, message)

    return handle


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
        batch_size: int = 500,
    ) -> None:
        self._sessions = sessions
        self._table = outbox.table
        self._handlers = handlers
        self._clock = clock
        self._batch_size = batch_size

    async def relay_once(self) -> int:
        """Delivers the messages that are due, a handler call per topic and merchant; returns
        how many were delivered."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            rows = await session.execute(
                select(self._table)
                .where(self._table.c.delivered_time.is_(None), self._table.c.available_time <= now)
                .order_by(self._table.c.id)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            )
            groups: dict[tuple[str, str], list[OutboxMessage]] = {}
            attempts: dict[int, int] = {}
            for row in rows.all():
                message = OutboxMessage(row.id, row.merchant_id, row.topic, row.payload)
                groups.setdefault((row.topic, row.merchant_id), []).append(message)
                attempts[row.id] = row.attempts
            delivered: list[int] = []
            for (topic, _), group in groups.items():
                if len(group) > 1:
                    error = await self._deliver(session, topic, group)
                    if error is None:
                        delivered.extend(message.id for message in group)
                        continue
                    log.warning("outbox.batch_failed", topic=topic, size=len(group), error=error)
                for message in group:
                    error = await self._deliver(session, topic, [message])
                    if error is None:
                        delivered.append(message.id)
                    else:
                        log.warning("outbox.retry", topic=topic, id=message.id, error=error)
                        await self._postpone(
                            session, message.id, attempts[message.id] + 1, error, now
                        )
            if delivered:
                await session.execute(
                    update(self._table)
                    .where(self._table.c.id == any_(cast(delivered, ARRAY(BigInteger))))
                    .values(delivered_time=now, attempts=self._table.c.attempts + 1)
                )
        return len(delivered)

    async def _postpone(
        self, session: AsyncSession, message_id: int, attempts: int, error: str, now: datetime
    ) -> None:
        await session.execute(
            update(self._table)
            .where(self._table.c.id == message_id)
            .values(
                attempts=attempts,
                available_time=now + backoff(attempts),
                last_error=error[:2000],
            )
        )

    async def _deliver(
        self, session: AsyncSession, topic: str, messages: Sequence[OutboxMessage]
    ) -> str | None:
        """Calls the topic's handler in a savepoint; returns its error, None once delivered."""
        try:
            async with session.begin_nested():
                await self._handlers[topic](session, messages)
        except Exception as error:
            return str(error)
        return None


def start_relays(relay: OutboxRelay, interval: float, workers: int) -> list[asyncio.Task[None]]:
    """`workers` relay loops at once. Each claims its own due messages (SKIP LOCKED), so a backlog
    drains `workers` consumer calls at a time, and one loop's database work overlaps another's
    round trip. Messages may then arrive out of their order, which every consumer allows: they
    are idempotent, and replica states carry versions."""
    return [
        asyncio.create_task(every(interval, "outbox_relay", relay.relay_once))
        for _ in range(workers)
    ]

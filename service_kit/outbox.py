"""Transactional outbox: a side effect is written in the transaction of the state change that
causes it, then delivered at least once by a relay; consumers must be idempotent.

Each service keeps the table in its own schema. Relays of several replicas share the work with
`FOR UPDATE SKIP LOCKED`. A handler delivers a group of messages of one topic and one merchant at
once (a batch call to the consumer); when the group fails, each of its messages is tried alone,
so one bad message cannot hold back the others. A message that fails for now (a consumer away,
a database error) is retried later with exponential backoff and jitter; one its consumer refused
for good is parked as a dead letter (`dead_time`, `last_error`, an ERROR log line
`outbox.dead_letter`) until an operator makes it due again (`retry_dead_letters`).
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
from service_kit.errors import DomainError

log = structlog.get_logger()

MAX_BACKOFF = timedelta(minutes=5)
# Refusals that the same message would meet again however often it is retried. NOT_FOUND counts:
# a message names what its own service committed with it, and a consumer's bare NOT_FOUND
# reaches a handler as UNAVAILABLE (backend_calls.answer_of), so a NotFound a handler raises
# says the message itself is wrong; `outbox-retry` replays it once that is fixed.
PERMANENT = frozenset(
    {
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
    }
)


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
        # Set when the message was parked as a dead letter; it is not retried while set.
        Column("dead_time", DateTime(timezone=True)),
        schema=schema,
    )


def dead_letter_upgrade(schema: str) -> list[str]:
    """The migration adding dead letters to a service's outbox table: the column, due messages
    indexed without them, and an index of them for the metric."""
    return [
        f"ALTER TABLE {schema}.outbox ADD COLUMN dead_time timestamptz",
        f"DROP INDEX {schema}.outbox_due",
        f"CREATE INDEX outbox_due ON {schema}.outbox (available_time)"
        " WHERE delivered_time IS NULL AND dead_time IS NULL",
        f"CREATE INDEX outbox_dead ON {schema}.outbox (id) WHERE dead_time IS NOT NULL",
    ]


def dead_letter_downgrade(schema: str) -> list[str]:
    return [
        f"DROP INDEX {schema}.outbox_dead",
        f"DROP INDEX {schema}.outbox_due",
        f"CREATE INDEX outbox_due ON {schema}.outbox (available_time) WHERE delivered_time IS NULL",
        f"ALTER TABLE {schema}.outbox DROP COLUMN dead_time",
    ]


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


def is_permanent(error: Exception) -> bool:
    """Whether retrying cannot help: a refusal, as opposed to a consumer or database away."""
    return isinstance(error, DomainError) and error.code in PERMANENT


def backoff(attempts: int) -> timedelta:
    """Exponential from one second, capped, with full jitter."""
    ceiling = min(MAX_BACKOFF.total_seconds(), 2.0**attempts)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def message_row(
    merchant_id: str, topic: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """An outbox row of a new message, deliverable at once."""
    return {
        "merchant_id": merchant_id,
        "topic": topic,
        "payload": payload,
        "create_time": now,
        "available_time": now,
    }


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
        await self.add_many(session, topic, [(merchant_id, payload)], now)

    async def add_many(
        self,
        session: AsyncSession,
        topic: str,
        messages: Sequence[tuple[str, dict[str, Any]]],
        now: datetime,
    ) -> None:
        """Messages of one topic, (merchant id, payload) each, in one statement."""
        if not messages:
            return
        await session.execute(
            insert(self.table),
            [message_row(merchant_id, topic, payload, now) for merchant_id, payload in messages],
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
                .where(
                    self._table.c.delivered_time.is_(None),
                    self._table.c.dead_time.is_(None),
                    self._table.c.available_time <= now,
                )
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
                    log.warning(
                        "outbox.batch_failed", topic=topic, size=len(group), error=str(error)
                    )
                for message in group:
                    error = await self._deliver(session, topic, [message])
                    if error is None:
                        delivered.append(message.id)
                    else:
                        await self._fail(session, message, attempts[message.id] + 1, error, now)
            if delivered:
                await session.execute(
                    update(self._table)
                    .where(self._table.c.id == any_(cast(delivered, ARRAY(BigInteger))))
                    .values(delivered_time=now, attempts=self._table.c.attempts + 1)
                )
        return len(delivered)

    async def _fail(
        self,
        session: AsyncSession,
        message: OutboxMessage,
        attempts: int,
        error: Exception,
        now: datetime,
    ) -> None:
        """Parks a message refused for good; postpones one that may succeed later."""
        values: dict[str, Any] = {"attempts": attempts, "last_error": str(error)[:2000]}
        context = {"topic": message.topic, "id": message.id, "merchant_id": message.merchant_id}
        if is_permanent(error):
            # The alert: an operator fixes the cause, then replays it with `outbox-retry`.
            log.error("outbox.dead_letter", **context, attempts=attempts, error=str(error))
            values["dead_time"] = now
        else:
            log.warning("outbox.retry", **context, error=str(error))
            values["available_time"] = now + backoff(attempts)
        await session.execute(
            update(self._table).where(self._table.c.id == message.id).values(**values)
        )

    async def _deliver(
        self, session: AsyncSession, topic: str, messages: Sequence[OutboxMessage]
    ) -> Exception | None:
        """Calls the topic's handler in a savepoint; returns its error, None once delivered."""
        try:
            async with session.begin_nested():
                await self._handlers[topic](session, messages)
        except Exception as error:
            return error
        return None


async def retry_dead_letters(
    sessions: async_sessionmaker[AsyncSession], table: Table, message_id: int | None
) -> list[int]:
    """Makes the dead letters due again (only `message_id` when given), after their cause was
    fixed; they keep their attempts and last error. Due since they were written, so the next
    pass of any relay takes them, whatever its clock reads. Returns their ids."""
    dead = table.c.dead_time.is_not(None)
    condition = dead if message_id is None else dead & (table.c.id == message_id)
    async with sessions() as session, session.begin():
        rows = await session.execute(
            update(table)
            .where(condition)
            .values(dead_time=None, available_time=table.c.create_time)
            .returning(table.c.id)
        )
        return sorted(rows.scalars())


def start_relays(relay: OutboxRelay, interval: float, workers: int) -> list[asyncio.Task[None]]:
    """`workers` relay loops at once. Each claims its own due messages (SKIP LOCKED), so a backlog
    drains `workers` consumer calls at a time, and one loop's database work overlaps another's
    round trip. Messages may then arrive out of their order, which every consumer allows: they
    are idempotent, and replica states carry versions."""
    return [
        asyncio.create_task(every(interval, "outbox_relay", relay.relay_once))
        for _ in range(workers)
    ]

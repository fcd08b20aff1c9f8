"""Stored answers of mutating RPCs, keyed by (merchant, request id): a retry gets the first answer.

Each service keeps the table in its own schema (`idempotency_table`). The reservation row is
written in the same transaction as the change it guards, so a concurrent retry waits for the first
attempt to commit (then replays it) or to roll back (then runs itself).
"""

import hashlib
from dataclasses import dataclass

from google.protobuf.message import Message
from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.errors import AlreadyExists, InvalidArgument

MAX_REQUEST_ID_LENGTH = 255


def idempotency_table(metadata: MetaData, schema: str) -> Table:
    return Table(
        "idempotency_records",
        metadata,
        Column("merchant_id", Text, nullable=False),
        Column("request_id", Text, nullable=False),
        Column("method", Text, nullable=False),
        Column("fingerprint", Text, nullable=False),
        Column("response", LargeBinary, nullable=True),
        Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("merchant_id", "request_id"),
        schema=schema,
    )


@dataclass(frozen=True)
class RequestKey:
    """Identifies one mutating request: its request id, method and a digest of its content."""

    request_id: str
    method: str
    digest: str

    @classmethod
    def of(cls, method: str, request: Message, request_id: str) -> "RequestKey | None":
        """None when the caller sent no request id (no idempotency asked for)."""
        if not request_id:
            return None
        if len(request_id) > MAX_REQUEST_ID_LENGTH:
            raise InvalidArgument("request_id is longer than 255 characters", field="request_id")
        content = method.encode() + b"\0" + request.SerializeToString(deterministic=True)
        return cls(request_id, method, hashlib.sha256(content).hexdigest())


class IdempotencyStore:
    """Remembers, per request key, the id of the object the request created or changed."""

    def __init__(self, table: Table) -> None:
        self._table = table

    async def first_answer(
        self, session: AsyncSession, merchant_id: str, key: RequestKey | None
    ) -> str | None:
        """Claims the key. Returns the id the first run answered with, if the request ran before."""
        if key is None:
            return None
        claimed = await session.execute(
            insert(self._table)
            .values(
                merchant_id=merchant_id,
                request_id=key.request_id,
                method=key.method,
                fingerprint=key.digest,
            )
            .on_conflict_do_nothing()
            .returning(self._table.c.request_id)
        )
        if claimed.first() is not None:
            return None
        row = (
            await session.execute(
                select(
                    self._table.c.method, self._table.c.fingerprint, self._table.c.response
                ).where(
                    self._table.c.merchant_id == merchant_id,
                    self._table.c.request_id == key.request_id,
                )
            )
        ).one()
        if row.method != key.method or row.fingerprint != key.digest:
            raise AlreadyExists(
                "request_id was already used for a different request", field="request_id"
            )
        answer: bytes = row.response
        return answer.decode()

    async def remember(
        self, session: AsyncSession, merchant_id: str, key: RequestKey | None, object_id: str
    ) -> None:
        if key is None:
            return
        await session.execute(
            update(self._table)
            .where(
                self._table.c.merchant_id == merchant_id,
                self._table.c.request_id == key.request_id,
            )
            .values(response=object_id.encode())
        )

"""Stored answers of mutating RPCs, keyed by (merchant, request id): a retry gets the first answer.

Each service keeps the table in its own schema (`idempotency_table`). The reservation row is
written in the same transaction as the change it guards, so a concurrent retry waits for the first
attempt to commit (then replays it) or to roll back (then runs itself).
"""

import hashlib

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


def fingerprint(method: str, request_bytes: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\0" + request_bytes).hexdigest()


class IdempotencyStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def reserve(
        self, session: AsyncSession, *, merchant_id: str, request_id: str, method: str, digest: str
    ) -> bytes | None:
        """Claims the request id. Returns the stored response when the request ran before."""
        if len(request_id) > MAX_REQUEST_ID_LENGTH:
            raise InvalidArgument("request_id is longer than 255 characters", field="request_id")
        claimed = await session.execute(
            insert(self._table)
            .values(
                merchant_id=merchant_id, request_id=request_id, method=method, fingerprint=digest
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
                    self._table.c.merchant_id == merchant_id, self._table.c.request_id == request_id
                )
            )
        ).one()
        if row.method != method or row.fingerprint != digest:
            raise AlreadyExists(
                "request_id was already used for a different request", field="request_id"
            )
        response: bytes = row.response
        return response

    async def remember(
        self, session: AsyncSession, *, merchant_id: str, request_id: str, response: bytes
    ) -> None:
        await session.execute(
            update(self._table)
            .where(self._table.c.merchant_id == merchant_id, self._table.c.request_id == request_id)
            .values(response=response)
        )

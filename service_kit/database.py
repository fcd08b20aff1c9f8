"""Engine, session factory and the unit of work: a transaction that commits only when told to."""

from types import TracebackType
from typing import Self

from asyncpg.exceptions import (
    AdminShutdownError,
    CannotConnectNowError,
    CrashShutdownError,
    InternalClientError,
    PostgresConnectionError,
)
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(database_url: str, *, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Statements are prepared once per connection and reused.
        connect_args={"statement_cache_size": 512},
    )


_AWAY = (
    OSError,
    PostgresConnectionError,
    CannotConnectNowError,
    AdminShutdownError,
    CrashShutdownError,
)


def _left_hanging(error: BaseException) -> bool:
    """asyncpg refusing an operation on a connection that still waits for the reply to an
    earlier one: what a connection the server terminated mid-transaction turns into. (Our
    connections are never shared between tasks, so it has no other cause here.)"""
    return isinstance(error, InternalClientError) and "another operation" in str(error)


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database is away for now (restarting, shutting down, the
    connection lost or refused): the work did not happen, so a retry may succeed. The pool's
    pre-ping replaces the dead connections on their next checkout. The whole chain counts: a
    failed rollback after a lost connection hides the loss in its context."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        cause = pending.pop()
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, _AWAY) or _left_hanging(cause):
            return True
        pending += [link for link in (cause.__cause__, cause.__context__) if link is not None]
    return False


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class UnitOfWork:
    """One database transaction. Rolls back on exit unless `commit()` was called."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()


async def lock_name(session: AsyncSession, name: str) -> None:
    """Takes the transaction-scoped advisory lock of `name` (hashed to a key): callers that lock
    the same name run one after the other until the holder's transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 15))"), {"name": name}
    )

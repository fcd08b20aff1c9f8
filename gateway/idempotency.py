"""The Idempotency-Key replay: a POST runs once per key; its answer is stored (sealed) for the
TTL and replayed to a retry with the same body."""

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.errors import ApiError
from gateway.settings import GatewaySettings
from gateway.tables import IdempotentResponseRow
from service_kit.clock import Clock
from service_kit.secret_box import SecretBox

MAX_IDEMPOTENCY_KEY = 255
# Stored answers deleted per statement once past their TTL.
PURGE_BATCH = 1_000


class IdempotentAnswers:
    """The stored answers of POSTs made with an Idempotency-Key."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: GatewaySettings,
        secrets: SecretBox,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        # Seals stored answers: one may carry a webhook signing secret.
        self._secrets = secrets
        self._clock = clock

    async def run_once(
        self,
        merchant_id: str,
        key: str | None,
        request_line: str,
        body: bytes,
        produce: Callable[[], Awaitable[dict[str, Any]]],
        status: int,
    ) -> JSONResponse:
        """Runs a POST once per Idempotency-Key: a retry with the same key and body gets the
        stored response for 24 hours; the same key with another body is 409. A refused request
        changed nothing, so it is not stored: its retry runs again."""
        if not key:
            return JSONResponse(await produce(), status_code=status)
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise ApiError(
                400,
                "invalid_request_error",
                "invalid_idempotency_key",
                "Idempotency-Key is longer than 255 characters",
                "Idempotency-Key",
            )
        fingerprint = hashlib.sha256(f"{request_line}\n".encode() + body).hexdigest()
        stored = await self._claim(merchant_id, key, fingerprint)
        if stored is not None:
            return stored
        try:
            data = await produce()
        except BaseException:
            await self._release(merchant_id, key)
            raise
        await self._remember(merchant_id, key, status, data)
        return JSONResponse(data, status_code=status)

    async def _claim(self, merchant_id: str, key: str, fingerprint: str) -> JSONResponse | None:
        now = self._clock.now()
        this_key = (
            IdempotentResponseRow.merchant_id == merchant_id,
            IdempotentResponseRow.idempotency_key == key,
        )
        async with self._sessions() as session, session.begin():
            # Expired, or claimed by a request that never finished (its gateway died): a claim
            # without a response outlives no request, so the retry runs the request again.
            await session.execute(
                delete(IdempotentResponseRow).where(
                    *this_key,
                    or_(
                        IdempotentResponseRow.create_time < now - self._settings.idempotency_ttl,
                        and_(
                            IdempotentResponseRow.status_code.is_(None),
                            IdempotentResponseRow.create_time
                            < now - self._settings.idempotency_claim_timeout,
                        ),
                    ),
                )
            )
            claimed = await session.execute(
                insert(IdempotentResponseRow)
                .values(
                    merchant_id=merchant_id,
                    idempotency_key=key,
                    fingerprint=fingerprint,
                    create_time=now,
                )
                .on_conflict_do_nothing()
                .returning(IdempotentResponseRow.idempotency_key)
            )
            if claimed.first() is not None:
                return None
            row = await session.scalar(select(IdempotentResponseRow).where(*this_key))
        assert row is not None
        if row.fingerprint != fingerprint:
            raise ApiError(
                409,
                "idempotency_error",
                "idempotency_key_reused",
                "this Idempotency-Key was used with another request",
                "Idempotency-Key",
            )
        if row.status_code is None or row.sealed_body is None:
            raise ApiError(
                409,
                "idempotency_error",
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running",
                "Idempotency-Key",
            )
        return JSONResponse(
            json.loads(self._secrets.open(row.sealed_body)),
            status_code=row.status_code,
            headers={"Idempotent-Replayed": "true"},
        )

    async def _remember(
        self, merchant_id: str, key: str, status: int, data: dict[str, Any]
    ) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(IdempotentResponseRow)
                .where(
                    IdempotentResponseRow.merchant_id == merchant_id,
                    IdempotentResponseRow.idempotency_key == key,
                )
                .values(status_code=status, sealed_body=self._secrets.seal(json.dumps(data)))
            )

    async def _release(self, merchant_id: str, key: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(IdempotentResponseRow).where(
                    IdempotentResponseRow.merchant_id == merchant_id,
                    IdempotentResponseRow.idempotency_key == key,
                )
            )

    async def purge_expired(self) -> int:
        """Deletes up to PURGE_BATCH stored answers (and abandoned claims) older than their TTL;
        returns how many, so the caller runs again at once while there are more."""
        cutoff = self._clock.now() - self._settings.idempotency_ttl
        expired = (
            select(IdempotentResponseRow.merchant_id, IdempotentResponseRow.idempotency_key)
            .where(IdempotentResponseRow.create_time < cutoff)
            .limit(PURGE_BATCH)
            .with_for_update(skip_locked=True)
        )
        async with self._sessions() as session, session.begin():
            deleted = await session.execute(
                delete(IdempotentResponseRow)
                .where(
                    tuple_(
                        IdempotentResponseRow.merchant_id, IdempotentResponseRow.idempotency_key
                    ).in_(expired)
                )
                .returning(IdempotentResponseRow.idempotency_key)
            )
            return len(deleted.all())

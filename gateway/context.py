"""What every merchant request goes through: the API key (and the throttle of failed ones), the
rate limit, the body (size, exact JSON), and for POSTs the Idempotency-Key replay."""

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.backends import Backends
from gateway.errors import ApiError, camel
from gateway.json_body import parse_exact_json
from gateway.merchants import KEY_PREFIX, KeyCache, Merchant, key_id_of
from gateway.rate_limit import FailureThrottle, RateLimiter
from gateway.settings import GatewaySettings
from gateway.tables import IdempotentResponseRow
from gateway.usage_batcher import UsageBatcher
from service_kit.clock import Clock
from service_kit.secret_box import SecretBox

M = TypeVar("M", bound=BaseModel)
MAX_IDEMPOTENCY_KEY = 255
# Stored answers deleted per statement once past their TTL.
PURGE_BATCH = 1_000


@dataclass(frozen=True)
class Gateway:
    """The gateway's dependencies, wired once in create_app."""

    settings: GatewaySettings
    sessions: async_sessionmaker[AsyncSession]
    backends: Backends
    keys: KeyCache
    auth_failures: FailureThrottle
    usage: UsageBatcher
    limiter: RateLimiter
    # Seals stored answers: one may carry a webhook signing secret.
    secrets: SecretBox
    clock: Clock


@dataclass
class MerchantRequest:
    gateway: Gateway
    merchant: Merchant
    request: Request
    body: bytes

    def parse(self, model: type[M]) -> M:
        """The body validated against a request schema; the first problem answers 400 naming
        the field."""
        data = parse_exact_json(self.body) if self.body else {}
        try:
            return model.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(camel(str(part)) for part in first["loc"] if not isinstance(part, int))
            raise ApiError(
                400,
                "invalid_request_error",
                "invalid_field",
                f"{field or 'body'}: {first['msg']}",
                field,
            ) from None

    async def call(self, method: Callable[..., Awaitable[Any]], message: Any) -> Any:
        return await self.gateway.backends.call(method, message, self.merchant.id)

    async def created(
        self, produce: Callable[[], Awaitable[dict[str, Any]]], status: int = 200
    ) -> JSONResponse:
        """Runs a POST once per Idempotency-Key: a retry with the same key and body gets the
        stored response for 24 hours; the same key with another body is 409. A refused request
        changed nothing, so it is not stored: its retry runs again."""
        key = self.request.headers.get("idempotency-key")
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
        fingerprint = hashlib.sha256(
            f"{self.request.method} {self.request.url.path}\n".encode() + self.body
        ).hexdigest()
        stored = await self._claim(key, fingerprint)
        if stored is not None:
            return stored
        try:
            data = await produce()
        except BaseException:
            await self._release(key)
            raise
        await self._remember(key, status, data)
        return JSONResponse(data, status_code=status)

    async def _claim(self, key: str, fingerprint: str) -> JSONResponse | None:
        now = self.gateway.clock.now()
        async with self.gateway.sessions() as session, session.begin():
            settings = self.gateway.settings
            # Expired, or claimed by a request that never finished (its gateway died): a claim
            # without a response outlives no request, so the retry runs the request again.
            await session.execute(
                delete(IdempotentResponseRow).where(
                    IdempotentResponseRow.merchant_id == self.merchant.id,
                    IdempotentResponseRow.idempotency_key == key,
                    or_(
                        IdempotentResponseRow.create_time < now - settings.idempotency_ttl,
                        and_(
                            IdempotentResponseRow.status_code.is_(None),
                            IdempotentResponseRow.create_time
                            < now - settings.idempotency_claim_timeout,
                        ),
                    ),
                )
            )
            claimed = await session.execute(
                insert(IdempotentResponseRow)
                .values(
                    merchant_id=self.merchant.id,
                    idempotency_key=key,
                    fingerprint=fingerprint,
                    create_time=now,
                )
                .on_conflict_do_nothing()
                .returning(IdempotentResponseRow.idempotency_key)
            )
            if claimed.first() is not None:
                return None
            row = await session.scalar(
                select(IdempotentResponseRow).where(
                    IdempotentResponseRow.merchant_id == self.merchant.id,
                    IdempotentResponseRow.idempotency_key == key,
                )
            )
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
            json.loads(self.gateway.secrets.open(row.sealed_body)),
            status_code=row.status_code,
            headers={"Idempotent-Replayed": "true"},
        )

    async def _remember(self, key: str, status: int, data: dict[str, Any]) -> None:
        async with self.gateway.sessions() as session, session.begin():
            await session.execute(
                update(IdempotentResponseRow)
                .where(
                    IdempotentResponseRow.merchant_id == self.merchant.id,
                    IdempotentResponseRow.idempotency_key == key,
                )
                .values(status_code=status, sealed_body=self.gateway.secrets.seal(json.dumps(data)))
            )

    async def _release(self, key: str) -> None:
        async with self.gateway.sessions() as session, session.begin():
            await session.execute(
                delete(IdempotentResponseRow).where(
                    IdempotentResponseRow.merchant_id == self.merchant.id,
                    IdempotentResponseRow.idempotency_key == key,
                )
            )


async def purge_expired_answers(gateway: Gateway) -> int:
    """Deletes up to PURGE_BATCH stored answers (and abandoned claims) older than their TTL;
    returns how many, so the caller runs again at once while there are more."""
    cutoff = gateway.clock.now() - gateway.settings.idempotency_ttl
    expired = (
        select(IdempotentResponseRow.merchant_id, IdempotentResponseRow.idempotency_key)
        .where(IdempotentResponseRow.create_time < cutoff)
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    async with gateway.sessions() as session, session.begin():
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


async def _authenticate(gateway: Gateway, request: Request, key: str) -> Merchant:
    """The key's merchant. A key this process validated recently needs no lookup; any other is
    looked up unless its client address or key id failed too often lately."""
    merchant = gateway.keys.remembered(key)
    if merchant is not None:
        return merchant
    subjects = [f"address:{request.client.host if request.client else ''}"]
    if key.startswith(KEY_PREFIX):
        # Cut short: a made-up id is not kept whole (real ones have 16 characters).
        subjects.append(f"key:{key_id_of(key)[:32]}")
    wait = gateway.auth_failures.wait(subjects)
    if wait:
        raise ApiError(
            429,
            "rate_limit_error",
            "too_many_failed_authentications",
            "too many failed authentications from this address or with this key; retry later",
            retry_after=wait,
        )
    merchant = await gateway.keys.look_up(key)
    if merchant is None:
        gateway.auth_failures.failed(subjects)
        raise ApiError(401, "authentication_error", "invalid_api_key", "the API key is not valid")
    return merchant


async def merchant_request(request: Request) -> MerchantRequest:
    """Authenticates the API key, applies the rate limit, and reads the body within its limit."""
    gateway: Gateway = request.app.state.gateway
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise ApiError(
            401,
            "authentication_error",
            "missing_api_key",
            "send your API key as Authorization: Bearer <key>",
        )
    merchant = await _authenticate(gateway, request, key.strip())
    decision = gateway.limiter.take(merchant.id)
    request.state.rate_limit = decision
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limit_error",
            "rate_limited",
            f"more than {decision.limit} requests a minute",
            retry_after=decision.reset_seconds,
        )
    body = await _read_body(request, gateway.settings.max_body_bytes)
    return MerchantRequest(gateway, merchant, request, body)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413, "invalid_request_error", "body_too_large", f"the body is larger than {limit} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413,
                "invalid_request_error",
                "body_too_large",
                f"the body is larger than {limit} bytes",
            )
        chunks.append(chunk)
    return b"".join(chunks)

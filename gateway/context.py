"""What a route works with: the gateway's dependencies, wired once in create_app, and the
authenticated merchant's request."""

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.backends import Backends, to_json
from gateway.idempotency import IdempotentAnswers
from gateway.merchants import KeyCache, Merchant
from gateway.rate_limit import FailureThrottle, RateLimiter
from gateway.settings import GatewaySettings
from gateway.usage_batcher import UsageBatcher


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
    # The public payment endpoints', per client address.
    public_limiter: RateLimiter
    answers: IdempotentAnswers


@dataclass
class MerchantRequest:
    """A request the merchant's API key authenticated, with its body as it was sent."""

    gateway: Gateway
    merchant: Merchant
    method: str
    path: str
    idempotency_key: str | None
    body: bytes

    async def call(self, method: Callable[..., Awaitable[Any]], message: Any) -> Any:
        return await self.gateway.backends.call(method, message, self.merchant.id)

    def request_id(self) -> str:
        """The service's idempotency key of this POST: the same Idempotency-Key with the same
        request (path and body, as the gateway's stored answer compares them). The service then
        acts once even when the gateway forgets the key, as it does when the call failed on its
        side (a deadline passed while the service committed) and the client retries."""
        if not self.idempotency_key:
            return ""
        sent = f"{self.idempotency_key}\n{self.method} {self.path}\n".encode()
        return "gw_" + hashlib.sha256(sent + self.body).hexdigest()

    async def answer(self, method: Callable[..., Awaitable[Any]], message: Any) -> dict[str, Any]:
        """The reply of one call in the API's JSON."""
        return to_json(await self.call(method, message))

    async def created(
        self, produce: Callable[[], Awaitable[dict[str, Any]]], status: int = 200
    ) -> JSONResponse:
        """The answer of a POST, run once per Idempotency-Key (gateway/idempotency.py)."""
        return await self.gateway.answers.run_once(
            self.merchant.id,
            self.idempotency_key,
            f"{self.method} {self.path}",
            self.body,
            produce,
            status,
        )

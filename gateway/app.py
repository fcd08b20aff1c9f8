"""The ASGI application: routers, the error envelope, the request observer, and the background
work (the purge of expired idempotent answers, the poll of API key revocations)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from gateway import (
    hosted_checkout,
    hosted_invoice,
    mandate_enrolment,
    openapi,
    pages,
    payment_relay,
)
from gateway.backends import Backends
from gateway.context import Gateway
from gateway.errors import ApiError, camel
from gateway.idempotency import IdempotentAnswers
from gateway.merchants import KeyCache
from gateway.middleware import ObserveRequests
from gateway.rate_limit import FailureThrottle, RateLimiter
from gateway.routes import (
    checkout_sessions,
    credits,
    customers,
    discounts,
    entitlements,
    invoices,
    ledger,
    merchant_settings,
    meters,
    operations,
    payout_wallets,
    plans,
    services,
    settlements,
    subscriptions,
    usage_alerts,
    usage_events,
    webhook_endpoints,
)
from gateway.settings import GatewaySettings
from gateway.usage_batcher import UsageBatcher
from service_kit.background import every
from service_kit.clock import Clock, SystemClock
from service_kit.database import create_engine, database_unavailable, session_factory
from service_kit.secret_box import SecretBox


def _envelope(error: ApiError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return JSONResponse(error.envelope(), status_code=error.status, headers=headers)


def create_app(settings: GatewaySettings, clock: Clock | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # First: without the key the gateway refuses to start (a ValueError naming it).
        secrets = SecretBox(settings.secrets_key.get_secret_value(), setting="GATEWAY_SECRETS_KEY")
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        sessions = session_factory(engine)
        backends = Backends(settings)
        gateway = Gateway(
            settings=settings,
            sessions=sessions,
            backends=backends,
            usage=UsageBatcher(backends),
            keys=KeyCache(sessions, settings.api_key_cache_seconds),
            auth_failures=FailureThrottle(
                settings.auth_failures_per_minute, settings.auth_failure_burst
            ),
            limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
            public_limiter=RateLimiter(
                settings.public_rate_limit_per_minute, settings.public_rate_limit_burst
            ),
            answers=IdempotentAnswers(sessions, settings, secrets, clock or SystemClock()),
        )
        app.state.gateway = gateway
        # Before serving: every key looked up is then tagged with a version read from the table.
        await gateway.keys.poll_revocations()
        background = [
            asyncio.create_task(
                every(
                    settings.idempotency_purge_seconds,
                    "idempotency_purge",
                    gateway.answers.purge_expired,
                )
            ),
            asyncio.create_task(
                every(
                    settings.revocation_poll_seconds,
                    "revocation_poll",
                    gateway.keys.poll_revocations,
                )
            ),
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await backends.close()
            await engine.dispose()

    app = FastAPI(
        title="USDC billing API",
        version="1.0.0",
        description="Usage-based billing settled in USDC: Retempo-compatible REST API.",
        lifespan=lifespan,
        # Both default pages load their scripts from a CDN; gateway/openapi.py serves /docs.
        docs_url=None,
        redoc_url=None,
    )
    for module in (
        services,
        plans,
        meters,
        usage_events,
        checkout_sessions,
        customers,
        credits,
        subscriptions,
        entitlements,
        usage_alerts,
        discounts,
        invoices,
        settlements,
        payout_wallets,
        ledger,
        merchant_settings,
        webhook_endpoints,
        operations,
        payment_relay,
        mandate_enrolment,
        hosted_checkout,
        hosted_invoice,
    ):
        app.include_router(module.router)
    app.mount(pages.STATIC, pages.static_files(), name="static")
    openapi.install(app)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return _envelope(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        field = ".".join(camel(str(part)) for part in first["loc"][1:] if not isinstance(part, int))
        return _envelope(
            ApiError(
                400,
                "invalid_request_error",
                "invalid_field",
                f"{field or 'body'}: {first['msg']}",
                field,
            )
        )

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        kind = "invalid_request_error" if error.status_code < 500 else "api_error"
        code = "not_found" if error.status_code == 404 else "http_error"
        return _envelope(ApiError(error.status_code, kind, code, str(error.detail)))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        if database_unavailable(error):
            # The gateway's own database (API keys, idempotent responses) is restarting.
            return _envelope(
                ApiError(
                    503, "api_error", "backend_unavailable", "the database is unavailable; retry"
                )
            )
        return _envelope(ApiError(500, "api_error", "internal_error", "an internal error occurred"))

    app.add_middleware(ObserveRequests)
    return app

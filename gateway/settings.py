"""Gateway settings, from GATEWAY_* environment variables."""

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_kit.settings import CredentialSettings


class GatewaySettings(CredentialSettings):
    """The gateway's settings; the internal service credential as every service has it."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/billing"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    metering_address: str = "127.0.0.1:50051"
    invoicing_address: str = "127.0.0.1:50052"
    settlement_address: str = "127.0.0.1:50053"
    # Deadline of every call to a backend service; past it the client gets 503.
    backend_deadline_seconds: float = Field(default=5.0, gt=0)
    # Token bucket per merchant: seed 003's 500 requests a minute; a batch counts once.
    rate_limit_per_minute: int = Field(default=500, ge=1)
    rate_limit_burst: int = Field(default=500, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_batch_events: int = Field(default=1_000, ge=1, le=10_000)
    # A valid API key is remembered this long; a revoked key stops working within it.
    api_key_cache_seconds: float = Field(default=30.0, ge=0)
    idempotency_ttl: timedelta = timedelta(hours=24)
    # A request still without a response this long after it claimed its Idempotency-Key was cut
    # off (its gateway process died); a retry may claim the key again. Far above any request.
    idempotency_claim_timeout: timedelta = timedelta(minutes=2)

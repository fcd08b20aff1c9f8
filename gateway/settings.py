"""Gateway settings, from GATEWAY_* environment variables."""

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from service_kit.settings import CredentialSettings

# Where `make up` writes how to reach its platform (database, services, service token) while it
# runs, so the operator commands (`python -m gateway create-key`, ...) work with no variables set.
# Variables that are set win over it.
LOCAL_PLATFORM_ENV = Path(".devstack/operator.env")


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
    # The public payment endpoints and pages, per client address.
    public_rate_limit_per_minute: int = Field(default=120, ge=1)
    public_rate_limit_burst: int = Field(default=60, ge=1)
    # Auto-pay: the hosted checkout proposes mandates lasting this long from the subscription's
    # start (its checkout's completion).
    mandate_lifetime_days: int = Field(default=365, ge=1, le=3650)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_batch_events: int = Field(default=1_000, ge=1, le=10_000)
    # Failed authentications (a wrong API key) per client address and per key id: past the
    # burst they answer 429 without a database lookup.
    auth_failures_per_minute: int = Field(default=60, ge=1)
    auth_failure_burst: int = Field(default=10, ge=1)
    # A valid API key is remembered this long at most.
    api_key_cache_seconds: float = Field(default=30.0, ge=0)
    # How often a gateway reads the revocation version: a revoked key stops working within it.
    revocation_poll_seconds: float = Field(default=1.0, gt=0)
    idempotency_ttl: timedelta = timedelta(hours=24)
    # How often stored answers older than their TTL are deleted.
    idempotency_purge_seconds: float = Field(default=60.0, gt=0)
    # Encrypts stored answers at rest (they may carry a webhook secret); required to serve.
    # Several comma-separated keys rotate: the first seals, any opens.
    secrets_key: SecretStr = SecretStr("")

    @property
    def idempotency_claim_timeout(self) -> timedelta:
        """A request still without a response this long after it claimed its Idempotency-Key was
        cut off (its gateway died), so a retry may claim the key again. A request makes one
        backend call, or (a single usage event) waits for the batch in flight and then its own;
        the margin covers its own database writes."""
        return timedelta(seconds=2 * self.backend_deadline_seconds + 2)

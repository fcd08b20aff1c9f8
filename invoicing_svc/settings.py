"""Invoicing settings, from INVOICING_* environment variables."""

from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from service_kit.settings import ServiceSettings


class InvoicingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICING_", extra="ignore")

    grpc_port: int = Field(default=50052, ge=0, le=65535)
    # Encrypts webhook signing secrets at rest (adapters/secret_box.py); required to serve.
    secrets_key: SecretStr = SecretStr("")
    metrics_port: int = Field(default=9102, ge=0, le=65535)
    metering_address: str = "127.0.0.1:50051"
    settlement_address: str = "127.0.0.1:50053"
    # Deadline of every call to metering and settlement.
    metering_deadline_seconds: float = Field(default=5.0, gt=0)
    # The hosted checkout page; a session's url is this plus "/<session id>".
    checkout_base_url: str = "http://127.0.0.1:8080/checkout"
    # A period is closed this long after it ended, so late usage events still count.
    late_event_grace: timedelta = timedelta(hours=1)
    # An OPEN invoice is due this long after it is finalized; then its subscription is PAST_DUE.
    payment_terms: timedelta = timedelta(days=7)
    # Allows AdvanceTestClock; never in production.
    test_clock_enabled: bool = False
    # How often the scheduler, the outbox relay and the webhook worker look for work.
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # How often usage alerts are checked: a crossing is found at most this long after the usage.
    alert_check_seconds: float = Field(default=1.0, gt=0)
    # Relay loops working the outbox at once (each delivery waits for its consumer).
    outbox_relay_workers: int = Field(default=4, ge=1, le=32)
    # The whole of one webhook attempt: connecting, sending, the first bytes of the answer.
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    # Webhooks sent at once by one replica, and at most to one endpoint (across replicas), so a
    # merchant's backlog or slow endpoint takes its own share and never the others'.
    webhook_concurrency: int = Field(default=64, ge=1, le=1000)
    webhook_endpoint_concurrency: int = Field(default=10, ge=1, le=100)
    # Local development only (a receiver on this machine), never in production, where merchants
    # could reach internal services: webhooks to loopback and private addresses, and plain http.
    webhook_allow_private_targets: bool = False
    webhook_allow_http: bool = False
    # An endpoint failing every attempt for this long is disabled (webhook_endpoint.disabled).
    webhook_disable_after: timedelta = timedelta(days=3)
    # A webhook is retried with backoff until it is this old, then marked FAILED.
    webhook_retry_horizon: timedelta = timedelta(days=3)
    # How long a rolled secret still signs deliveries next to the new one (Stripe: up to 24 h).
    webhook_secret_grace: timedelta = timedelta(hours=24)

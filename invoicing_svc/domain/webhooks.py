"""Webhook endpoints, the events sent to them, and each delivery with its attempts."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EndpointStatus(StrEnum):
    ENABLED = "ENABLED"
    # It failed for too long, or the merchant disabled it: it gets no deliveries.
    DISABLED = "DISABLED"


class DeliveryStatus(StrEnum):
    # Waiting for its next attempt.
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    # Past its retry horizon, or its endpoint was disabled.
    FAILED = "FAILED"


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    merchant_id: str
    url: str
    event_types: tuple[str, ...]
    secret: str
    create_time: datetime
    # The first failed attempt since the last success, and when it was disabled for failing.
    failing_since: datetime | None = None
    disable_time: datetime | None = None
    description: str = ""
    # The secret before the last roll, signing deliveries too until its expire time.
    previous_secret: str = ""
    previous_secret_expire_time: datetime | None = None

    @property
    def status(self) -> EndpointStatus:
        return EndpointStatus.ENABLED if self.disable_time is None else EndpointStatus.DISABLED


@dataclass(frozen=True)
class WebhookEvent:
    """An event to deliver to every endpoint subscribed to its type; `body` is what is sent."""

    id: str
    type: str
    body: str


@dataclass(frozen=True)
class DueDelivery:
    """A delivery claimed for one attempt, with what it takes to send it."""

    id: str
    merchant_id: str
    endpoint_id: str
    event_id: str
    body: str
    attempt_count: int
    create_time: datetime
    url: str
    secret: str
    # Within the grace after a secret roll, the old secret signs too.
    previous_secret: str = ""


@dataclass(frozen=True)
class WebhookAttempt:
    attempt_number: int
    attempt_time: datetime
    status_code: int
    error: str
    duration_ms: int


@dataclass(frozen=True)
class WebhookDelivery:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    last_status_code: int
    last_error: str
    next_attempt_time: datetime
    create_time: datetime
    attempts: tuple[WebhookAttempt, ...]

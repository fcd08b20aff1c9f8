"""Metering settings, from METERING_* environment variables."""

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_kit.settings import ServiceSettings


class MeteringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METERING_", extra="ignore")

    grpc_port: int = Field(default=50051, ge=0, le=65535)
    metrics_port: int = Field(default=9101, ge=0, le=65535)
    # How far in the future an occurredAt may lie, for clients whose clocks run ahead.
    max_clock_skew: timedelta = timedelta(minutes=5)
    # Months of event partitions kept created ahead of the current one.
    partitions_ahead: int = Field(default=2, ge=1, le=24)
    max_batch_size: int = Field(default=10_000, ge=1, le=100_000)
    # Events a stream commits together at most; a smaller group commits when no more are waiting.
    stream_group_size: int = Field(default=1_000, ge=1, le=10_000)
    # How long CheckEntitlement may answer from what it read (events recorded by other replicas
    # show after at most this long; this replica's own at once). Ingestion enforces hard limits
    # exactly whatever it is.
    entitlement_cache_seconds: float = Field(default=1.0, ge=0, le=60)

"""Typed settings read from the environment; each service subclasses with its own prefix."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every gRPC service needs. `METERING_DATABASE_URL`, `METERING_GRPC_PORT`, ..."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/billing"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    log_level: str = "INFO"
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)

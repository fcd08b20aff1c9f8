"""Settlement settings, from SETTLEMENT_* environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_kit.settings import ServiceSettings


class SettlementSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SETTLEMENT_", extra="ignore")

    grpc_port: int = Field(default=50053, ge=0, le=65535)

"""Invoicing settings, from INVOICING_* environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_kit.settings import ServiceSettings


class InvoicingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICING_", extra="ignore")

    grpc_port: int = Field(default=50052, ge=0, le=65535)

"""Typed settings read from the environment; each service subclasses with its own prefix."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from service_kit.credentials import TLS_VARIABLES, TOKEN_VARIABLE, ServiceCredentials


class CredentialSettings(BaseSettings):
    """The internal service credential, the same variables (no prefix) in every process."""

    model_config = SettingsConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)

    service_token: SecretStr | None = Field(default=None, validation_alias=TOKEN_VARIABLE)
    tls_cert_file: Path | None = Field(default=None, validation_alias=TLS_VARIABLES[0])
    tls_key_file: Path | None = Field(default=None, validation_alias=TLS_VARIABLES[1])
    tls_ca_file: Path | None = Field(default=None, validation_alias=TLS_VARIABLES[2])

    def service_credentials(self) -> ServiceCredentials:
        """Raises CredentialError when the token is missing: nothing serves or calls without it."""
        token = self.service_token.get_secret_value() if self.service_token else None
        return ServiceCredentials.of(token, self.tls_cert_file, self.tls_key_file, self.tls_ca_file)


class ServiceSettings(CredentialSettings):
    """What every gRPC service needs. `METERING_DATABASE_URL`, `METERING_GRPC_PORT`, ..."""

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/billing"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    # Prometheus /metrics, on grpc_host.
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    log_level: str = "INFO"
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)

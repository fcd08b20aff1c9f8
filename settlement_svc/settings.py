"""Settlement settings, from SETTLEMENT_* environment variables."""

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_kit.settings import ServiceSettings


class SettlementSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SETTLEMENT_", extra="ignore")

    grpc_port: int = Field(default=50053, ge=0, le=65535)
    metrics_port: int = Field(default=9103, ge=0, le=65535)
    invoicing_address: str = "127.0.0.1:50052"
    invoicing_deadline_seconds: float = Field(default=5.0, gt=0)
    # The EVM node (JSON-RPC over HTTP), the chain it must be, and the USDC contract on it.
    chain_rpc_url: str = "http://127.0.0.1:8545"
    chain_id: int = 31337
    usdc_contract_address: str = ""
    chain_timeout_seconds: float = Field(default=5.0, gt=0)
    # Blocks on top of the transaction's block before a payment is final.
    required_confirmations: int = Field(default=3, ge=0, le=1000)
    # A transaction not seen on chain this long after its submission fails as EXPIRED.
    settlement_expiry: timedelta = timedelta(hours=1)
    # How often pending settlements are checked again, and the outbox relayed.
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Relay loops working the outbox at once (each delivery waits for its consumer).
    outbox_relay_workers: int = Field(default=4, ge=1, le=32)

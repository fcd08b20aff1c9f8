"""Settlement settings, from SETTLEMENT_* environment variables."""

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr
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
    # Payment requests: how long one is payable, and the hosted pages that pay them.
    payment_request_ttl: timedelta = timedelta(days=7)
    payment_page_base_url: str = "http://127.0.0.1:8080/pay"
    checkout_base_url: str = "http://127.0.0.1:8080/checkout"
    # The token's EIP-712 domain (real USDC: "USD Coin", version "2" on every chain).
    usdc_eip712_name: str = "USD Coin"
    usdc_eip712_version: str = "2"
    # The relayer account that submits signed authorizations and pays their gas: its private
    # key (0x + 64 hex digits) inline, or in a file (a mounted secret). Without either the
    # relay answers FAILED_PRECONDITION; the watcher still detects payments relayed elsewhere.
    relayer_private_key: SecretStr | None = None
    relayer_private_key_file: Path | None = None
    # Below this balance (wei) of the relayer, readiness warns and the metric shows it.
    relayer_low_gas_wei: int = Field(default=10**16, ge=0)
    # A signed transaction not mined this long after its last send is sent again.
    relayer_resend_seconds: float = Field(default=15.0, gt=0)
    # One still not in a block this long after it was signed, while the node's gas price is above
    # its own, is signed again at the same nonce for more (at least GAS_BUMP_PERCENT more, never
    # above the ceiling).
    relayer_replace_seconds: float = Field(default=120.0, gt=0)
    relayer_max_gas_price_wei: int = Field(default=500 * 10**9, gt=0)
    # The chain watcher: whether it runs, the first block it reads (unset: the head when it first
    # runs), and blocks per eth_getLogs.
    watcher_enabled: bool = True
    watcher_start_block: int | None = Field(default=None, ge=0)
    watcher_max_blocks: int = Field(default=2000, ge=1, le=100_000)
    # Auto-pay: the mandate contract ("" = off), the collector account that relays mandates
    # and collects under them (its key inline or in a file), and when a failed collection is
    # tried again, counted from its first failure.
    mandates_contract_address: str = ""
    # The block the watcher starts reading the mandate contract's logs at (its deployment);
    # unset, the last final block when it first runs.
    mandates_start_block: int | None = Field(default=None, ge=0)
    collector_private_key: SecretStr | None = None
    collector_private_key_file: Path | None = None
    collection_retry_schedule: list[timedelta] = Field(
        default=[timedelta(hours=1), timedelta(days=1), timedelta(days=3), timedelta(days=7)],
        max_length=20,
    )

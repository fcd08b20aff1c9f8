"""`python -m gateway create-key` and `set-wallet`: the payout wallet is registered with
settlement before anything is created, and a failure is one line, not a traceback."""

import os
import subprocess
import sys

import pytest
from eth_utils.address import to_checksum_address
from sqlalchemy import select

from billing.settlement.v1 import settlement_pb2 as spb
from devstack.postgres import free_port
from gateway.__main__ import CommandError, issue_key
from gateway.tables import MerchantRow
from service_kit.database import create_engine, session_factory
from tests.conftest import SERVICE_TOKEN, Platform, register_payout_wallet
from tests.gateway.conftest import gateway_settings


async def merchant_exists(database_url: str, merchant_id: str) -> bool:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with session_factory(engine)() as session:
            found = await session.scalar(
                select(MerchantRow.id).where(MerchantRow.id == merchant_id)
            )
    finally:
        await engine.dispose()
    return found is not None


async def test_create_key_registers_the_wallet_with_settlement(
    database_url: str, platform: Platform
) -> None:
    settings = gateway_settings(database_url, platform)
    wallet = "0x" + "5a" * 20
    key = await issue_key(settings, "mer_cli", "CLI merchant", wallet)
    assert key.startswith("bk_")
    found = await platform.stub.GetPayoutWallet(
        spb.GetPayoutWalletRequest(), metadata=(("x-merchant-id", "mer_cli"),)
    )
    assert found.wallet_address == to_checksum_address(wallet)


async def test_a_wallet_of_another_merchant_creates_nothing(
    database_url: str, platform: Platform
) -> None:
    taken = await register_payout_wallet(platform, "mer_cli_owner")
    settings = gateway_settings(database_url, platform)
    with pytest.raises(CommandError) as refused:
        await issue_key(settings, "mer_cli_squatter", "", taken)
    assert str(refused.value) == (
        "the wallet was refused: this wallet is registered to another merchant"
    )
    assert not await merchant_exists(database_url, "mer_cli_squatter")


def gateway_command(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *arguments],
        env={**os.environ, "BILLING_SERVICE_TOKEN": SERVICE_TOKEN, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_database_or_no_settlement_is_one_line() -> None:
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/billing"
    no_database = gateway_command(
        "create-key", "--merchant", "mer_cli_x", GATEWAY_DATABASE_URL=nowhere
    )
    no_settlement = gateway_command(
        "set-wallet",
        "--merchant",
        "mer_cli_x",
        "--wallet",
        "0x" + "5b" * 20,
        GATEWAY_SETTLEMENT_ADDRESS=f"127.0.0.1:{free_port()}",
        GATEWAY_BACKEND_DEADLINE_SECONDS="1",
    )
    assert (no_database.returncode, no_database.stderr) == (
        1,
        "python -m gateway create-key: the database cannot be reached "
        "(is `make up` running? GATEWAY_DATABASE_URL names it)\n",
    )
    assert no_settlement.returncode == 1
    assert no_settlement.stderr.startswith("python -m gateway set-wallet: settlement at 127.0.0.1:")
    assert no_settlement.stderr.count("\n") == 1

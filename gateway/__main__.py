"""python -m gateway [serve | migrate | create-key --merchant ID ... | set-wallet ... |
revoke-key KEY]"""

import argparse
import asyncio
from pathlib import Path

import grpc
import uvicorn
from sqlalchemy.exc import DBAPIError

from billing.settlement.v1.settlement_pb2 import SetPayoutWalletRequest
from billing.settlement.v1.settlement_pb2_grpc import SettlementServiceStub
from gateway.app import create_app
from gateway.merchants import create_api_key, create_merchant, merchant, revoke_api_key
from gateway.settings import LOCAL_PLATFORM_ENV, GatewaySettings
from service_kit import migrations
from service_kit.channels import open_channel
from service_kit.clock import SystemClock
from service_kit.database import create_engine, database_unavailable, session_factory
from service_kit.logging import configure_logging
from service_kit.tenancy import MERCHANT_METADATA_KEY

MIGRATIONS = Path(__file__).parent / "migrations"


class CommandError(Exception):
    """A command that cannot be done, said in one line (no traceback)."""


async def register_wallet(settings: GatewaySettings, merchant_id: str, wallet: str) -> None:
    """Registers the merchant's payout wallet with settlement, which holds that record."""
    channel = open_channel(settings.settlement_address, settings.service_credentials())
    try:
        await SettlementServiceStub(channel).SetPayoutWallet(
            SetPayoutWalletRequest(wallet_address=wallet),
            metadata=((MERCHANT_METADATA_KEY, merchant_id),),
            timeout=settings.backend_deadline_seconds,
            wait_for_ready=True,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise CommandError(
                f"settlement at {settings.settlement_address} cannot be reached "
                "(is `make up` running? GATEWAY_SETTLEMENT_ADDRESS names it)"
            ) from None
        raise CommandError(f"the wallet was refused: {error.details()}") from None
    finally:
        await channel.close()


async def issue_key(settings: GatewaySettings, merchant_id: str, name: str, wallet: str) -> str:
    """Creates the merchant if it is new, then a new API key for it; prints nothing else. A
    wallet, when given, is registered first, so a refused one creates nothing."""
    if wallet:
        await register_wallet(settings, merchant_id, wallet)
    engine = create_engine(settings.database_url, pool_size=1)
    now = SystemClock().now()
    try:
        async with session_factory(engine)() as session, session.begin():
            if await merchant(session, merchant_id) is None:
                await create_merchant(session, name or merchant_id, now, merchant_id)
            return await create_api_key(session, merchant_id, now)
    finally:
        await engine.dispose()


async def revoke_key(settings: GatewaySettings, key: str) -> bool:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with session_factory(engine)() as session, session.begin():
            return await revoke_api_key(session, key, SystemClock().now())
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve")
    commands.add_parser("migrate")
    key = commands.add_parser("create-key", help="create a merchant API key (shown once)")
    key.add_argument("--merchant", required=True, help="merchant id, e.g. mer_demo")
    key.add_argument("--name", default="", help="merchant name, for a new merchant")
    key.add_argument("--wallet", default="", help="the USDC wallet the merchant is paid in")
    wallet = commands.add_parser("set-wallet", help="register the wallet a merchant is paid in")
    wallet.add_argument("--merchant", required=True, help="merchant id")
    wallet.add_argument("--wallet", required=True, help="0x + 40 hex digits")
    revoke = commands.add_parser("revoke-key", help="revoke an API key")
    revoke.add_argument("key", help='the key, or its "bk_<key id>" prefix')
    arguments = parser.parse_args()
    # An operator command next to a running `make up` finds its platform without variables.
    local = LOCAL_PLATFORM_ENV if arguments.command != "serve" else None
    settings = GatewaySettings(_env_file=local if local and local.exists() else None)
    configure_logging(settings.log_level)
    try:
        run(arguments, settings)
    except CommandError as error:
        raise SystemExit(f"python -m gateway {arguments.command}: {error}") from None
    except (OSError, DBAPIError) as error:
        if not database_unavailable(error):
            raise
        raise SystemExit(
            f"python -m gateway {arguments.command}: the database cannot be reached "
            "(is `make up` running? GATEWAY_DATABASE_URL names it)"
        ) from None


def run(arguments: argparse.Namespace, settings: GatewaySettings) -> None:
    if arguments.command == "migrate":
        migrations.upgrade(MIGRATIONS, settings.database_url)
    elif arguments.command == "create-key":
        print(
            asyncio.run(issue_key(settings, arguments.merchant, arguments.name, arguments.wallet))
        )
    elif arguments.command == "set-wallet":
        asyncio.run(register_wallet(settings, arguments.merchant, arguments.wallet))
        print(f"{arguments.merchant} is paid at {arguments.wallet}")
    elif arguments.command == "revoke-key":
        if not asyncio.run(revoke_key(settings, arguments.key)):
            raise CommandError("no live API key matches")
        print("revoked")
    else:
        uvicorn.run(
            create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None
        )


if __name__ == "__main__":
    main()

"""python -m gateway [serve | migrate | create-key --merchant ID ... | revoke-key KEY]"""

import argparse
import asyncio
from pathlib import Path

import uvicorn

from gateway.app import create_app
from gateway.merchants import create_api_key, create_merchant, merchant, revoke_api_key
from gateway.settings import GatewaySettings
from service_kit import migrations
from service_kit.clock import SystemClock
from service_kit.database import create_engine, session_factory
from service_kit.logging import configure_logging

MIGRATIONS = Path(__file__).parent / "migrations"


async def issue_key(settings: GatewaySettings, merchant_id: str, name: str, wallet: str) -> str:
    """Creates the merchant if it is new, then a new API key for it; prints nothing else."""
    engine = create_engine(settings.database_url, pool_size=1)
    now = SystemClock().now()
    try:
        async with session_factory(engine)() as session, session.begin():
            if await merchant(session, merchant_id) is None:
                await create_merchant(session, name or merchant_id, wallet, now, merchant_id)
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
    key.add_argument("--wallet", default="0x" + "0" * 40, help="the merchant's USDC wallet")
    revoke = commands.add_parser("revoke-key", help="revoke an API key")
    revoke.add_argument("key", help='the key, or its "bk_<key id>" prefix')
    arguments = parser.parse_args()
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    if arguments.command == "migrate":
        migrations.upgrade(MIGRATIONS, settings.database_url)
    elif arguments.command == "create-key":
        print(
            asyncio.run(issue_key(settings, arguments.merchant, arguments.name, arguments.wallet))
        )
    elif arguments.command == "revoke-key":
        if not asyncio.run(revoke_key(settings, arguments.key)):
            raise SystemExit("no live API key matches")
        print("revoked")
    else:
        uvicorn.run(
            create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None
        )


if __name__ == "__main__":
    main()

"""The command line every service shares: `python -m <service> [serve|migrate]`, and
`outbox-retry (--id N | --all)` for a service with an outbox."""

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from sqlalchemy import Table

from service_kit import migrations
from service_kit.credentials import CredentialError
from service_kit.database import create_engine, database_unavailable, session_factory
from service_kit.grpc_server import RunningServer, wait_for_termination_signal
from service_kit.logging import configure_logging
from service_kit.outbox import retry_dead_letters
from service_kit.settings import ServiceSettings

log = structlog.get_logger()

Cleanup = Callable[[], Awaitable[None]]
Serve = Callable[[], Awaitable[tuple[RunningServer, Cleanup]]]


class CannotServe(Exception):
    """A service finds at its start that it must not serve (a misconfiguration), said in one
    line."""


def hosted(
    running: RunningServer, background: list[asyncio.Task[None]], close: Cleanup
) -> tuple[RunningServer, Cleanup]:
    """A started server with its background tasks; the cleanup cancels them, then `close`s."""

    async def cleanup() -> None:
        for task in background:
            task.cancel()
        await close()

    return running, cleanup


async def _retry_dead_letters(
    settings: ServiceSettings, outbox: Table, message_id: int | None
) -> list[int]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        return await retry_dead_letters(session_factory(engine), outbox, message_id)
    finally:
        await engine.dispose()


def _outbox_retry(
    name: str, settings: ServiceSettings, outbox: Table, args: argparse.Namespace
) -> None:
    """Makes the outbox's dead letters (one, or all) due again, once their cause is fixed."""
    try:
        retried = asyncio.run(_retry_dead_letters(settings, outbox, args.id))
    except Exception as error:
        if not database_unavailable(error):
            raise
        variable = f"{settings.model_config.get('env_prefix', '')}DATABASE_URL"
        sys.exit(
            f"python -m {name} outbox-retry: the database cannot be reached ({variable} names it)"
        )
    if args.id is not None and not retried:
        sys.exit(f"python -m {name} outbox-retry: message {args.id} is not a dead letter")
    sys.stdout.write(f"{len(retried)} dead letter(s) due again: {retried}\n")


def run_service(
    name: str,
    settings: ServiceSettings,
    migrations_dir: Path | None,
    serve: Serve,
    outbox: Table | None = None,
) -> None:
    """`serve` starts the server and returns it with a cleanup coroutine for after it stops;
    `outbox` is the service's outbox table, for `outbox-retry`."""
    parser = argparse.ArgumentParser(prog=f"python -m {name}")
    commands = ["serve", "migrate"] + (["outbox-retry"] if outbox is not None else [])
    parser.add_argument("command", choices=commands, nargs="?", default="serve")
    if outbox is not None:
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--id", type=int, help="the dead letter to make due again")
        target.add_argument("--all", action="store_true", help="every dead letter")
    args = parser.parse_args()
    command = args.command
    configure_logging(settings.log_level)
    if command == "migrate":
        if migrations_dir is not None:
            migrations.upgrade(migrations_dir, settings.database_url)
        log.info("migrated", service=name)
        return
    if command == "outbox-retry" and outbox is not None:
        if args.id is None and not args.all:
            parser.error("outbox-retry needs --id N or --all")
        _outbox_retry(name, settings, outbox, args)
        return
    try:
        settings.service_credentials()
    except CredentialError as error:
        parser.exit(2, f"{name} cannot serve: {error}\n")

    async def main() -> None:
        running, cleanup = await serve()
        log.info("serving", service=name, address=f"{settings.grpc_host}:{running.port}")
        await wait_for_termination_signal()
        log.info("stopping", service=name)
        await running.stop(settings.shutdown_grace_seconds)
        await cleanup()

    try:
        asyncio.run(main())
    except CannotServe as error:
        parser.exit(2, f"{name} cannot serve: {error}\n")

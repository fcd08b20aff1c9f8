"""The command line every service shares: `python -m <service> [serve|migrate]`."""

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from service_kit import migrations
from service_kit.credentials import CredentialError
from service_kit.grpc_server import RunningServer, wait_for_termination_signal
from service_kit.logging import configure_logging
from service_kit.settings import ServiceSettings

log = structlog.get_logger()

Cleanup = Callable[[], Awaitable[None]]


class CannotServe(Exception):
    """A service finds at its start that it must not serve (a misconfiguration), said in one
    line."""


Serve = Callable[[], Awaitable[tuple[RunningServer, Cleanup]]]


def hosted(
    running: RunningServer, background: list[asyncio.Task[None]], close: Cleanup
) -> tuple[RunningServer, Cleanup]:
    """A started server with its background tasks; the cleanup cancels them, then `close`s."""

    async def cleanup() -> None:
        for task in background:
            task.cancel()
        await close()

    return running, cleanup


def run_service(
    name: str,
    settings: ServiceSettings,
    migrations_dir: Path | None,
    serve: Serve,
) -> None:
    """`serve` starts the server and returns it with a cleanup coroutine for after it stops."""
    parser = argparse.ArgumentParser(prog=f"python -m {name}")
    parser.add_argument("command", choices=["serve", "migrate"], nargs="?", default="serve")
    command = parser.parse_args().command
    configure_logging(settings.log_level)
    if command == "migrate":
        if migrations_dir is not None:
            migrations.upgrade(migrations_dir, settings.database_url)
        log.info("migrated", service=name)
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

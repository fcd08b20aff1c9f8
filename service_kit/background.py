"""Periodic background work (schedulers, relays) that survives its own failures."""

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger()


async def every(interval_seconds: float, name: str, work: Callable[[], Awaitable[object]]) -> None:
    """Runs `work` forever, pausing `interval_seconds` between runs; a failure is logged and the
    next run tries again. Cancel the task to stop it."""
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("background.failed", work=name, error=str(error))
        await asyncio.sleep(interval_seconds)

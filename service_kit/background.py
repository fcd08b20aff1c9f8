"""Periodic background work (schedulers, relays) that survives its own failures."""

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger()


async def every(interval_seconds: float, name: str, work: Callable[[], Awaitable[object]]) -> None:
    """Runs `work` forever. After a run that reports work done (a truthy result, e.g. messages
    relayed) the next starts at once, so a backlog drains at full speed; otherwise it pauses
    `interval_seconds`. A failure is logged and the next run tries again. Cancel to stop."""
    while True:
        done: object = None
        try:
            done = await work()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("background.failed", work=name, error=str(error))
        await asyncio.sleep(0 if done else interval_seconds)

"""Polling what a process does on its own (a scheduler, a verifier) until it is done."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], interval: float = 0.2
) -> T:
    """The first fetched value that is `done`; the test's own timeout bounds the wait."""
    while True:
        value = await fetch()
        if done(value):
            return value
        await asyncio.sleep(interval)

"""A cache of values read from the database, each kept for a bounded time, for hot-path reads.

Concurrent misses of one key share one load. A value is dropped when its group (the object it
was read from, a subscription) changes here, so this process's own writes are seen at once; a
load that began before such a change does not store what it read, which may predate it. Other
processes' writes are seen once the value ages out.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Generic, TypeVar

Value = TypeVar("Value")
# (group, name within it)
Key = tuple[str, str]


class FreshCache(Generic[Value]):
    def __init__(self, max_age_seconds: float, max_entries: int = 100_000) -> None:
        self._max_age = max_age_seconds
        self._max_entries = max_entries
        # group -> name -> (when its load began, value)
        self._values: dict[str, dict[str, tuple[float, Value]]] = {}
        self._entries = 0
        self._loads: dict[Key, asyncio.Future[Value]] = {}
        # Changes per group, so a load can tell whether one happened while it read.
        self._changes: dict[str, int] = {}

    async def get(self, key: Key, load: Callable[[], Awaitable[Value]]) -> Value:
        found = self._values.get(key[0], {}).get(key[1])
        if found is not None and time.monotonic() - found[0] < self._max_age:
            return found[1]
        pending = self._loads.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Value] = asyncio.get_running_loop().create_future()
        self._loads[key] = future
        changes = self._changes.get(key[0], 0)
        started = time.monotonic()
        try:
            value = await load()
        except BaseException as error:
            future.set_exception(error)
            # Retrieved here, so a failure nobody else awaited is not reported as unhandled.
            future.exception()
            raise
        finally:
            del self._loads[key]
        future.set_result(value)
        if self._changes.get(key[0], 0) == changes:
            if self._entries >= self._max_entries:
                self._values.clear()
                self._entries = 0
            group = self._values.setdefault(key[0], {})
            self._entries += key[1] not in group
            group[key[1]] = (started, value)
        return value

    def changed(self, groups: Collection[str]) -> None:
        """Drops what is held of the groups: they changed."""
        if len(self._changes) >= self._max_entries and not self._loads:
            # No load is in flight to compare against what is forgotten.
            self._changes.clear()
        for group in groups:
            self._changes[group] = self._changes.get(group, 0) + 1
            self._entries -= len(self._values.pop(group, {}))

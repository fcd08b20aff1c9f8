"""Group commit: concurrent single requests of one key (a merchant) travel together.

While a call for a key is in flight, the items arriving for that key wait and leave together in
the next call, so an idle service adds no latency (a lone item leaves at the next turn of the
event loop) and a busy one amortises each call over many items. Each caller gets its own result,
or the exception of its group."""

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Sends the items of one key; answers one result per item, in order.
Send = Callable[[str, list[Item]], Awaitable[Sequence[Result]]]


class Coalescer(Generic[Item, Result]):
    def __init__(self, send: Send[Item, Result], max_group: int) -> None:
        self._send = send
        self._max_group = max_group
        self._waiting: dict[str, list[tuple[Item, asyncio.Future[Result]]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def submit(self, key: str, item: Item) -> Result:
        answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((item, answer))
        if key not in self._senders:
            # A fresh context: a group belongs to no single caller (nor to its request id).
            self._senders[key] = asyncio.create_task(
                self._send_groups(key), context=contextvars.Context()
            )
        return await answer

    async def _send_groups(self, key: str) -> None:
        try:
            while waiting := self._waiting.pop(key, None):
                if len(waiting) > self._max_group:
                    self._waiting[key] = waiting[self._max_group :]
                    waiting = waiting[: self._max_group]
                await self._send_group(key, waiting)
        finally:
            del self._senders[key]

    async def _send_group(self, key: str, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._send(key, [item for item, _ in group])
            answered = list(zip(group, results, strict=True))
        except Exception as error:  # each caller of the group gets the failure
            for _, answer in group:
                if not answer.done():
                    answer.set_exception(error)
            return
        for (_, answer), result in answered:
            if not answer.done():
                answer.set_result(result)

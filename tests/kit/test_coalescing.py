"""The group commit of service_kit/coalescing.py: groups form while a call is in flight, per key,
within the size limit; each caller gets its own result or its group's failure."""

import asyncio

import pytest
import structlog

from service_kit.coalescing import Coalescer
from service_kit.request_ids import bind_request_id


async def test_items_arriving_during_a_call_leave_together_per_key_and_in_limits() -> None:
    calls: list[tuple[str, list[int], object]] = []

    async def send(key: str, items: list[int]) -> list[str]:
        calls.append((key, items, structlog.contextvars.get_contextvars().get("request_id")))
        await asyncio.sleep(0.01)
        return [f"{key}:{item * 10}" for item in items]

    coalescer: Coalescer[int, str] = Coalescer(send, max_group=3)
    bind_request_id("req-caller")
    first = asyncio.create_task(coalescer.submit("a", 0))
    await asyncio.sleep(0)  # the first call is in flight
    rest = [coalescer.submit("a", i) for i in range(1, 6)] + [coalescer.submit("b", 7)]
    results = await asyncio.gather(first, *rest)
    assert results == ["a:0", "a:10", "a:20", "a:30", "a:40", "a:50", "b:70"]
    assert [(key, items) for key, items, _ in calls] == [
        ("a", [0]),
        ("b", [7]),
        ("a", [1, 2, 3]),
        ("a", [4, 5]),
    ]
    # A group belongs to no single caller: no caller's request id leaks into it.
    assert {request_id for _, _, request_id in calls} == {None}


async def test_a_failed_call_fails_its_own_group_only() -> None:
    async def send(key: str, items: list[int]) -> list[int]:
        await asyncio.sleep(0.01)
        if 13 in items:
            raise ValueError("unlucky group")
        return items

    coalescer: Coalescer[int, int] = Coalescer(send, max_group=10)
    first = asyncio.create_task(coalescer.submit("a", 1))
    await asyncio.sleep(0)
    unlucky = asyncio.gather(coalescer.submit("a", 12), coalescer.submit("a", 13))
    assert await first == 1
    with pytest.raises(ValueError, match="unlucky group"):
        await unlucky
    assert await coalescer.submit("a", 14) == 14

"""One module per measured figure; each returns Figure rows next to their baseline."""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

Request = TypeVar("Request")


@dataclass(frozen=True)
class Figure:
    """A measurement and the baseline it is compared with in the same run."""

    name: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    # What the issue asks of this figure, in words, and whether this run meets it.
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """The value at `share` (0.99 for p99) of values sorted ascending."""
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


async def timed_calls(
    call: Callable[[Request], Awaitable[object]],
    requests: Iterable[Request],
    in_flight: int,
    seconds: float | None = None,
) -> tuple[list[float], float]:
    """`call` on each of `requests`, `in_flight` at a time (from one event loop), until they run
    out or `seconds` have passed (no call starts after that); answers the calls' milliseconds,
    sorted, and the wall seconds from the first call's start to the last one's end."""
    pending = iter(requests)
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = math.inf if seconds is None else started + seconds

    async def worker() -> None:
        for request in pending:
            began = time.perf_counter()
            if began >= deadline:
                return
            await call(request)
            latencies.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return sorted(latencies), time.perf_counter() - started

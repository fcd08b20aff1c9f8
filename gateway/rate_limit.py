"""Token buckets (in this process: replicas each hold their own buckets): one per merchant for
its requests, one per client address for the public payment endpoints and pages, and one per
client address and per API key id for failed authentications."""

import math
import time
from dataclasses import dataclass, field

# Buckets kept at most before the refilled ones are dropped: client addresses are unbounded.
MAX_BUCKETS = 10_000


@dataclass
class Bucket:
    tokens: float
    updated: float = field(default_factory=time.monotonic)

    def refill(self, now: float, rate: float, burst: int) -> None:
        self.tokens = min(burst, self.tokens + (now - self.updated) * rate)
        self.updated = now

    def wait(self, rate: float) -> int:
        """Seconds until a token is back (0 when one is there)."""
        return 0 if self.tokens >= 1 else math.ceil((1 - self.tokens) / rate)


def _forget_refilled(buckets: dict[str, Bucket], now: float, rate: float, burst: int) -> None:
    """Drops the full buckets: a subject seen again starts from a full one all the same."""
    for subject, bucket in list(buckets.items()):
        bucket.refill(now, rate, burst)
        if bucket.tokens >= burst:
            del buckets[subject]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until a token is back (0 when one is there).
    reset_seconds: int


class RateLimiter:
    def __init__(self, per_minute: int, burst: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = burst
        self._limit = per_minute
        self._buckets: dict[str, Bucket] = {}

    def take(self, subject: str) -> Decision:
        """One request of `subject` (a merchant id, or a client address)."""
        now = time.monotonic()
        if len(self._buckets) >= MAX_BUCKETS:
            _forget_refilled(self._buckets, now, self._rate, self._burst)
        bucket = self._buckets.setdefault(subject, Bucket(float(self._burst), now))
        bucket.refill(now, self._rate, self._burst)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return Decision(True, self._limit, int(bucket.tokens), 0)
        return Decision(False, self._limit, 0, bucket.wait(self._rate))


class FailureThrottle:
    """Failed authentications: each takes a token from the bucket of every subject it names (its
    client address, its key id). A request naming a subject whose bucket is empty is refused
    before its key is looked up; successes take nothing, so only failures hold a subject up."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = burst
        self._buckets: dict[str, Bucket] = {}

    def wait(self, subjects: list[str]) -> int:
        """Seconds until every subject may try again; 0 when none is held up."""
        now = time.monotonic()
        waits = [0]
        for subject in subjects:
            bucket = self._buckets.get(subject)
            if bucket is not None:
                bucket.refill(now, self._rate, self._burst)
                waits.append(bucket.wait(self._rate))
        return max(waits)

    def failed(self, subjects: list[str]) -> None:
        now = time.monotonic()
        if len(self._buckets) >= MAX_BUCKETS:
            _forget_refilled(self._buckets, now, self._rate, self._burst)
        for subject in subjects:
            bucket = self._buckets.setdefault(subject, Bucket(float(self._burst), now))
            bucket.refill(now, self._rate, self._burst)
            bucket.tokens = max(0.0, bucket.tokens - 1)

"""A token bucket per merchant (in this process: replicas each hold their own buckets)."""

import math
import time
from dataclasses import dataclass, field


@dataclass
class Bucket:
    tokens: float
    updated: float = field(default_factory=time.monotonic)


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

    def take(self, merchant_id: str) -> Decision:
        now = time.monotonic()
        bucket = self._buckets.setdefault(merchant_id, Bucket(float(self._burst), now))
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return Decision(True, self._limit, int(bucket.tokens), 0)
        wait = math.ceil((1 - bucket.tokens) / self._rate)
        return Decision(False, self._limit, 0, wait)

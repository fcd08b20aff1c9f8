"""Prefixed, time-ordered identifiers: "evt_" + 26 characters of Crockford base32 (a ULID:
48 bits of milliseconds, then 80 random bits)."""

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# Every 10-bit value as its two base32 digits: 13 lookups make an id (this is a hot path).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(120, -1, -10)
# The first five digits hold only the time, the last eight only the random bits.
_TIME_SHIFTS, _RANDOM_SHIFTS = _SHIFTS[:5], _SHIFTS[5:]


def new_id(prefix: str) -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return prefix + "_" + "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _SHIFTS])


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` ids of one millisecond: one clock reading and one read of randomness for all."""
    millis = (time.time_ns() // 1_000_000) << 80
    head = prefix + "_" + "".join([_PAIRS[(millis >> shift) & 0x3FF] for shift in _TIME_SHIFTS])
    randomness = os.urandom(10 * count)
    ids = []
    for start in range(0, 10 * count, 10):
        value = int.from_bytes(randomness[start : start + 10], "big")
        ids.append(head + "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _RANDOM_SHIFTS]))
    return ids

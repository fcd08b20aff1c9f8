"""Prefixed, time-ordered identifiers: "evt_" + 26 characters of Crockford base32 (a ULID:
48 bits of milliseconds, then 80 random bits)."""

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# Every 10-bit value as its two base32 digits: 13 lookups make an id (this is a hot path).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(120, -1, -10)


def new_id(prefix: str) -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return prefix + "_" + "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _SHIFTS])

"""Prefixed, time-ordered identifiers: "evt_" + 26 characters of Crockford base32 (a ULID:
48 bits of milliseconds, then 80 random bits)."""

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# Every 10-bit value as its two base32 digits: 13 lookups make an id (this is a hot path).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(120, -1, -10)
# The first five pairs of digits hold only the time.
_TIME_SHIFTS = _SHIFTS[:5]
# A random byte's low five bits as a digit (256 is a multiple of 32, so each digit is uniform):
# the random digits of a whole batch are one translation in C.
_DIGIT_OF_BYTE = bytes(ord(_ALPHABET[byte % 32]) for byte in range(256))


def new_id(prefix: str) -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return prefix + "_" + "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _SHIFTS])


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` ids of one millisecond: one clock reading and one read of randomness for all."""
    millis = (time.time_ns() // 1_000_000) << 80
    head = prefix + "_" + "".join([_PAIRS[(millis >> shift) & 0x3FF] for shift in _TIME_SHIFTS])
    digits = os.urandom(16 * count).translate(_DIGIT_OF_BYTE).decode()
    return [head + digits[start : start + 16] for start in range(0, 16 * count, 16)]

"""Identifiers: prefixed, 26 Crockford base32 characters, ordered by creation time."""

import re
import time

from service_kit.ids import new_id, new_ids


def test_ids_are_prefixed_crockford_and_sort_by_time() -> None:
    first = new_id("evt")
    time.sleep(0.002)
    second = new_id("evt")
    assert re.fullmatch(r"evt_[0-9a-hjkmnp-tv-z]{26}", first)
    assert first < second
    assert len({new_id("x") for _ in range(10_000)}) == 10_000


def test_ids_made_together_share_the_time_digits_and_differ() -> None:
    before = new_id("evt")
    time.sleep(0.002)
    batch = new_ids("evt", 10_000)
    assert all(re.fullmatch(r"evt_[0-9a-hjkmnp-tv-z]{26}", i) for i in batch)
    assert len(set(batch)) == 10_000
    assert {i[:14] for i in batch} == {batch[0][:14]}
    assert before < min(batch)
    # The time digits decode to the clock's milliseconds, as new_id's do.
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    value = 0
    for digit in batch[0][4:]:
        value = value * 32 + alphabet.index(digit)
    assert abs((value >> 80) - time.time_ns() // 1_000_000) < 1_000

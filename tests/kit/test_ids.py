"""Identifiers: prefixed, 26 Crockford base32 characters, ordered by creation time."""

import re
import time

from service_kit.ids import new_id


def test_ids_are_prefixed_crockford_and_sort_by_time() -> None:
    first = new_id("evt")
    time.sleep(0.002)
    second = new_id("evt")
    assert re.fullmatch(r"evt_[0-9a-hjkmnp-tv-z]{26}", first)
    assert first < second
    assert len({new_id("x") for _ in range(10_000)}) == 10_000

"""The one rule for identifiers that cross services (user ids, event keys, ids of services,
subscriptions and invoices): what one service accepts, no other refuses."""

import re
from functools import lru_cache

from service_kit.errors import InvalidArgument

MAX_LENGTH = 128
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")


# A batch of events repeats the same few ids thousands of times: a repeat is one dict lookup.
# Only strings short enough to be valid are remembered, so the cache stays small.
@lru_cache(maxsize=16_384)
def _matches(value: str) -> bool:
    return IDENTIFIER.fullmatch(value) is not None


def require_identifier(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    if len(value) > MAX_LENGTH or not _matches(value):
        raise InvalidArgument(
            f"{field} must be 1-128 characters of [A-Za-z0-9_.:-], starting with a letter or digit",
            field=field,
        )
    return value

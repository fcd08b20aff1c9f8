"""The one rule for identifiers that cross services (user ids, event keys, ids of services,
subscriptions and invoices): what one service accepts, no other refuses."""

import re

from service_kit.errors import InvalidArgument

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")


def require_identifier(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    if not IDENTIFIER.match(value):
        raise InvalidArgument(
            f"{field} must be 1-128 characters of [A-Za-z0-9_.:-], starting with a letter or digit",
            field=field,
        )
    return value

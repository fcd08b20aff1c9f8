"""Opaque page tokens for keyset pagination, and page size bounds."""

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, tuple_

from service_kit.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be 0-{MAX_PAGE_SIZE}", field="page_size")
    return requested or DEFAULT_PAGE_SIZE


def encode_token(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode_token(token: str, length: int) -> list[Any] | None:
    """The position a token carries; None for an empty token."""
    if not token:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        raise InvalidArgument(
            "page_token is not a token this service issued", field="page_token"
        ) from None
    if not isinstance(position, list) or len(position) != length:
        raise InvalidArgument("page_token is not a token this service issued", field="page_token")
    return position


def creation_position(token: str) -> tuple[datetime, str] | None:
    """The (create_time, id) position a token of a creation-ordered list carries."""
    position = decode_token(token, 2)
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position[0]), str(position[1])
    except (TypeError, ValueError):
        raise InvalidArgument(
            "page_token is not a token this service issued", field="page_token"
        ) from None


def cut_page(
    items: list[T], limit: int, position: Callable[[T], tuple[datetime, str]]
) -> tuple[list[T], str]:
    """`items` was fetched with limit + 1: returns the page and the token of the next one."""
    page = items[:limit]
    if len(items) <= limit:
        return page, ""
    moment, identifier = position(page[-1])
    return page, encode_token([moment.isoformat(), identifier])


def in_creation_order(
    query: Select[Any],
    create_time: Any,
    identifier: Any,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    """A keyset page of a query, oldest first: the rows after the (create_time, id) position."""
    if after is not None:
        query = query.where(tuple_(create_time, identifier) > tuple_(*after))
    return query.order_by(create_time, identifier).limit(limit)

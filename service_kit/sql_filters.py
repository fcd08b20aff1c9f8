"""Filters shared by the stores of every service."""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Text, any_, cast
from sqlalchemy.dialects.postgresql import ARRAY


def id_in(column: Any, ids: Iterable[str]) -> ColumnElement[bool]:
    """`column = ANY(:ids)`: one array parameter, so the statement is the same (and prepared once)
    whatever the number of ids."""
    return column == any_(cast(sorted(ids), ARRAY(Text)))  # type: ignore[no-any-return]

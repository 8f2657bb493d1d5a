"""Dialect-aware INSERT ... ON CONFLICT for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert(session: Session, table: Table):
    """The INSERT construct of the session's dialect, which knows ON CONFLICT."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for dialect {dialect!r}")


def insert_ignore(
    session: Session, table: Table, rows: Mapping[str, Any] | list[Mapping[str, Any]], conflict: Iterable[str]
) -> int:
    """Insert rows, silently skipping those whose conflict columns already exist; returns rows inserted."""
    if not rows:
        return 0
    statement = _insert(session, table).values(rows).on_conflict_do_nothing(index_elements=list(conflict))
    return session.execute(statement).rowcount or 0


def upsert(
    session: Session,
    table: Table,
    row: Mapping[str, Any],
    conflict: Iterable[str],
    update: Iterable[str],
) -> None:
    """Insert one row, or update the named columns of the existing row with the same conflict columns."""
    statement = _insert(session, table).values(row)
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict), set_={name: statement.excluded[name] for name in update}
    )
    session.execute(statement)

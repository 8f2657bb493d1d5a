"""Report aggregate changes gathered during a unit of work, written at commit as atomic `col = col + delta` upserts."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session

from processors.db.models import (
    ConsentAggregate,
    DeliveryTimeAggregate,
    DeliveryTimeRollup,
    ParkedReceiptAggregate,
    SentAggregate,
)

TABLES: tuple[type[DeclarativeBase], ...] = (SentAggregate, DeliveryTimeAggregate, DeliveryTimeRollup,
                                             ParkedReceiptAggregate, ConsentAggregate)
# Switch for bench/processors.py's A/B only: False makes the handlers skip every aggregate change.
ENABLED = True


def key_columns(model: type[DeclarativeBase]) -> list[str]:
    """The dimension columns of an aggregate table, in key order."""
    return [column.name for column in model.__table__.primary_key.columns]


def counter_columns(model: type[DeclarativeBase]) -> list[str]:
    """The count columns of an aggregate table."""
    return [column.name for column in model.__table__.columns if not column.primary_key]


class AggregateDeltas:
    """Per table and key, how much each counter moves; merged in memory so a batch writes each row once."""

    def __init__(self) -> None:
        self.changes: dict[type[DeclarativeBase], dict[tuple, Counter[str]]] = {model: {} for model in TABLES}

    def add(self, model: type[DeclarativeBase], key: tuple, counts: dict[str, int], sign: int = 1) -> None:
        """Move the counters of one aggregate row by `sign` × counts."""
        row = self.changes[model].setdefault(key, Counter())
        for name, value in counts.items():
            if value:
                row[name] += sign * value

    def merge(self, other: AggregateDeltas) -> None:
        """Add another set of changes to these."""
        for model, rows in other.changes.items():
            for key, counts in rows.items():
                self.add(model, key, counts)

    def rows(self, model: type[DeclarativeBase]) -> list[dict[str, Any]]:
        """The non-zero changes of a table as full rows (every counter present), in key order."""
        keys, counters = key_columns(model), counter_columns(model)
        found = []
        for key in sorted(self.changes[model]):
            counts = self.changes[model][key]
            if any(counts.values()):
                found.append({**dict(zip(keys, key, strict=True)), **{name: counts[name] for name in counters}})
        return found

    def flush(self, session: Session) -> None:
        """Add the changes to the tables, one multi-row upsert per table, then forget them.

        Each row is `INSERT ... ON CONFLICT DO UPDATE SET col = col + excluded.col`: the database adds under the
        row's lock, so the sent-messages and reconciliation processors changing the same row both count. Keys go
        in sorted order, and this runs last before commit, so two units lock aggregate rows in one global order.
        """
        for model in TABLES:
            rows = self.rows(model)
            if rows:
                session.execute(increment(session.get_bind().dialect.name, model), rows)
        self.clear()

    def clear(self) -> None:
        """Forget every change (rollback)."""
        for rows in self.changes.values():
            rows.clear()


def increment(dialect: str, model: type[DeclarativeBase]):
    """The upsert adding a row's counters to the stored row with its key (executemany of full rows)."""
    table: Table = model.__table__  # type: ignore[assignment]
    statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect](table)
    return statement.on_conflict_do_update(
        index_elements=key_columns(model),
        set_={name: table.c[name] + statement.excluded[name] for name in counter_columns(model)},
    )

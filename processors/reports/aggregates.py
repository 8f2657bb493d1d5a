"""Report aggregates read back: from their tables for whole days, from the rows for part days and the rebuild."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.orm import DeclarativeBase

from processors.db.aggregate_deltas import TABLES, AggregateDeltas, counter_columns, key_columns
from processors.db.models import (
    Click,
    ConsentAggregate,
    OptOutHistory,
    ParkedReceiptAggregate,
    Receipt,
    SentAggregate,
    SentMessage,
)
from processors.domain.aggregates import add_contribution, contribution, day_of

STREAM = 10_000
INSERT_ROWS = 500  # rows per INSERT (SQLite allows 32766 parameters; the widest table has 26 columns)
Progress = Callable[[str, int], None]


def from_tables(connection: Connection, first_day: str, end_day: str,
                skip: tuple[type[DeclarativeBase], ...] = ()) -> AggregateDeltas:
    """The stored aggregate rows of the days [first_day, end_day) (YYYY-MM-DD), by the tables' primary keys."""
    found = AggregateDeltas()
    for model in TABLES:
        if model in skip:
            continue
        table = model.__table__
        keys, counters = key_columns(model), counter_columns(model)
        statement = select(table).where(table.c.day >= first_day, table.c.day < end_day)
        rows = found.changes[model]
        for record in connection.execute(statement):
            mapping = record._mapping
            rows[tuple(mapping[name] for name in keys)] = Counter({name: mapping[name] for name in counters})
    return found


def from_rows(connection: Connection, start: datetime | None = None, end: datetime | None = None,
              progress: Progress | None = None) -> AggregateDeltas:
    """The aggregates of the rows in [start, end) (each by its own time: sent, received), computed from scratch
    with the functions the processors use, so they equal what the processors kept."""
    found = AggregateDeltas()

    def streaming(statement):
        return connection.execute(statement.execution_options(stream_results=True, yield_per=STREAM))

    # clicks per message by the clicks' sent_message_id index: part days must not group the whole clicks table
    clicks = select(func.count()).where(Click.sent_message_id == SentMessage.id).scalar_subquery()
    sent = select(
        SentMessage.vendor, SentMessage.sender, SentMessage.campaign_id, SentMessage.country_iso2,
        SentMessage.sent_at, SentMessage.status, SentMessage.conflict, SentMessage.parts, SentMessage.received_at,
        SentMessage.delivered_at, clicks.label("clicks"),
    ).where(*_within(SentMessage.sent_at, start, end))
    for count, row in enumerate(streaming(sent), start=1):
        share = contribution(row)
        add_contribution(found, share)
        if row.clicks:
            found.add(SentAggregate, share.key, {"clicks": row.clicks, "clicked_messages": 1})
        if progress and count % 100_000 == 0:
            progress("sent messages read", count)
    parked = select(Receipt.vendor, Receipt.received_at).where(
        Receipt.parked, *_within(Receipt.received_at, start, end)
    )
    for row in streaming(parked):
        found.add(ParkedReceiptAggregate, (day_of(row.received_at), row.vendor), {"parked": 1})
    changes = select(OptOutHistory.vendor, OptOutHistory.sender, OptOutHistory.received_at, OptOutHistory.action).where(
        OptOutHistory.changed.is_(True), OptOutHistory.action.in_(("opt_out", "opt_in")),
        *_within(OptOutHistory.received_at, start, end),
    )
    for row in streaming(changes):
        name = "opt_outs" if row.action == "opt_out" else "opt_ins"
        found.add(ConsentAggregate, (day_of(row.received_at), row.vendor, row.sender or ""), {name: 1})
    return found


def _within(column, start: datetime | None, end: datetime | None) -> list:
    """Conditions of a half-open time range, either end open when None."""
    return [condition for condition in (
        column >= start if start is not None else None, column < end if end is not None else None,
    ) if condition is not None]


def rebuild(connection: Connection, progress: Progress | None = None) -> dict[str, int]:
    """Replace every aggregate row by what the rows add up to now (in the caller's transaction); rows per table.

    Run it with the processors stopped: a change they commit while the rebuild reads would be counted twice or
    not at all.
    """
    computed = from_rows(connection, progress=progress)
    written = {}
    for model in TABLES:
        connection.execute(delete(model.__table__))
        rows = computed.rows(model)
        for begin in range(0, len(rows), INSERT_ROWS):  # emptied above: plain multi-row inserts
            connection.execute(insert(model.__table__).values(rows[begin:begin + INSERT_ROWS]))
        written[model.__tablename__] = len(rows)
        if progress:
            progress(model.__tablename__, len(rows))
    return written


def next_day(day: str) -> str:
    """The day after a YYYY-MM-DD day."""
    return (datetime.strptime(day, "%Y-%m-%d") + timedelta(days=1)).strftime("%Y-%m-%d")


"""COPY for a unit's queued rows on PostgreSQL (processors/db/copy.py): the same rows as an INSERT, and failures
raised as the SQLAlchemy errors the runtime sorts into conflicts (retried, then isolated) and outages (retried for as
long as they last, never dead-lettered). PostgreSQL only: SQLite keeps the executemany."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from processors.db import upgrade
from processors.db.copy import copy_rows
from processors.db.engine import make_engine
from processors.db.models import OutboxRecord, ProcessedEvent, Receipt
from processors.runtime import is_outage, is_transient

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(postgres_url):
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def receipt(event_id: str, **extra) -> dict:
    values = {"event_id": event_id, "vendor": "sinch", "message_id": "m1", "raw_message_id": "M1",
              "status": "delivered", "vendor_status": "Delivered", "received_at": AT, "occurred_at": None,
              "raw": {"vendor": "sinch", "nested": {"price": "0.0412", "ok": True}, "text": "ARRÊT"},
              "parked": True, "outcome": "parked"}
    return {**values, **extra}


def test_copied_rows_read_back_as_an_insert_writes_them(engine):
    with Session(engine) as session, session.begin():
        copy_rows(session, Receipt.__table__, [receipt("e1")])
        session.execute(Receipt.__table__.insert(), [receipt("e2")])
    with Session(engine) as session:
        copied, inserted = session.scalars(select(Receipt).order_by(Receipt.event_id)).all()
    columns = [c.key for c in Receipt.__table__.columns if c.key not in ("id", "event_id")]
    assert {c: getattr(copied, c) for c in columns} == {c: getattr(inserted, c) for c in columns}
    assert copied.raw["text"] == "ARRÊT" and copied.received_at == AT and copied.version == 1  # default taken


def test_rows_with_different_columns_each_get_their_defaults(engine):
    rows = [{"event_id": "o1", "topic": "t", "key": "k", "headers": [["ce_id", "1"]], "value": "{}",
             "created_at": AT, "sent_at": None},
            {"event_id": "o2", "topic": "t", "key": "k", "headers": [], "value": "{}", "created_at": AT}]
    with Session(engine) as session, session.begin():
        copy_rows(session, OutboxRecord.__table__, rows)
    with Session(engine) as session:
        assert [(r.event_id, r.headers, r.sent_at) for r in session.scalars(select(OutboxRecord).order_by(
            OutboxRecord.event_id))] == [("o1", [["ce_id", "1"]], None), ("o2", [], None)]


def test_a_duplicate_is_an_integrity_error_the_runtime_retries_as_a_conflict(engine):
    row = {"consumer_group": "g", "event_id": "e1", "topic": "t", "partition": 0, "offset": 1, "processed_at": AT}
    with Session(engine) as session, session.begin():
        copy_rows(session, ProcessedEvent.__table__, [row])
    with Session(engine) as session, pytest.raises(IntegrityError) as raised:
        copy_rows(session, ProcessedEvent.__table__, [row])
    assert is_transient(raised.value) and not is_outage(raised.value)


def test_a_lost_connection_is_an_outage_and_the_connection_is_dropped(engine, postgres_url):
    with Session(engine) as session:
        pid = session.scalar(text("SELECT pg_backend_pid()"))
        killer = sqlalchemy.create_engine(postgres_url)
        with killer.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        with pytest.raises(OperationalError) as raised:
            copy_rows(session, Receipt.__table__, [receipt("e3")])
    assert is_outage(raised.value) and raised.value.connection_invalidated
    with Session(engine) as session:  # the pool hands out a live connection again
        assert session.scalar(text("SELECT 1")) == 1

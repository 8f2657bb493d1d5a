"""A batch costs the database a fixed number of statements, however many events it holds (SQLite and PostgreSQL).

Draining a backlog after an outage is where the processors' speed matters, and there most receipts are consumed
before their sends (another topic): reconciliation parks them, and the sent-messages processor matches them when
the sends come. Each processor's batch is run here as the runtime runs it (prefetch, handlers, commit, settle) at
two sizes; a statement per event shows as a difference between the sizes. Before the batch prefetches, a send cost 5
statements (its INSERT, the parked-receipt lookup, the click UPDATE, the receipt's and the message's UPDATE), a parked
receipt 2 (the multipart-owner lookup, in the handler and again in the settle), a click 3. SQLite cannot return the
ids of a multi-row INSERT in order, so there SQLAlchemy inserts new rows that need their ids one by one (in process,
no round trip): on SQLite only those INSERTs may grow with the batch.
"""

from __future__ import annotations

import threading
from collections import namedtuple

from sqlalchemy import event, func, select

from core.events import Envelope
from processors.clients import KafkaClients
from processors.db.engine import make_session_factory
from processors.db.models import Click, Receipt, SentMessage
from processors.registry import PROCESSORS
from processors.runtime import ProcessorLoop
from receiver.vendors import canonical_message_id
from tests.processors.factories import click, receipt, sent, settings_for

Record = namedtuple("Record", "topic partition offset")


def run_batch(engine, processor: str, payloads: list) -> list[str]:
    """Run one batch through the processor's loop (without Kafka); the statements it sent to the database."""
    settings = settings_for("127.0.0.1:1", "", str(engine.url))
    loop = ProcessorLoop(PROCESSORS[processor], settings, threading.Event(), make_session_factory(engine),
                         clients=KafkaClients(settings), canonical_id=canonical_message_id)
    envelopes = [Envelope.wrap(payload) for payload in payloads]
    records = [(Record(envelope.topic, 0, offset), envelope) for offset, envelope in enumerate(envelopes)]
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        handled = loop._apply(records)
        if loop.processor.settle is not None:
            loop._settle(handled)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return statements


def cost(engine, statements: list[str]) -> int:
    """The statements that count: all of them on PostgreSQL; on SQLite all but the INSERTs (see above)."""
    if engine.dialect.name == "sqlite":
        return len([s for s in statements if not s.lstrip().upper().startswith("INSERT")])
    return len(statements)


def ids(first: int, count: int) -> list[str]:
    return [f"BL{n:05d}" for n in range(first, first + count)]


def test_sends_matching_parked_receipts_cost_the_same_statements_for_10_or_40(engine, session):
    counts = []
    for first, size in ((0, 10), (100, 40)):
        run_batch(engine, "reconciliation", [receipt("sinch", m, "delivered", 20) for m in ids(first, size)])
        statements = run_batch(engine, "sent-messages", [sent("sinch", m.lower()) for m in ids(first, size)])
        counts.append(cost(engine, statements))
    assert counts[0] == counts[1], counts
    session.rollback()
    assert session.scalar(select(func.count()).where(Receipt.parked)) == 0
    assert session.scalar(select(func.count()).where(SentMessage.status == "delivered")) == 50


def test_receipts_parked_before_their_sends_cost_the_same_statements_for_10_or_40(engine, session):
    counts = [cost(engine, run_batch(engine, "reconciliation",
                                     [receipt("sinch", m, "delivered", 20) for m in ids(first, size)]))
              for first, size in ((0, 10), (100, 40))]
    assert counts[0] == counts[1], counts
    session.rollback()
    assert session.scalar(select(func.count()).where(Receipt.parked)) == 50


def test_clicks_on_stored_sends_cost_the_same_statements_for_10_or_40(engine, session):
    run_batch(engine, "sent-messages", [sent("mobivate", m.lower(), campaign_id="autumn") for m in ids(0, 50)])
    counts = [cost(engine, run_batch(engine, "clicks", [click("mobivate", m, n=n)
                                                        for n, m in enumerate(ids(first, size))]))
              for first, size in ((0, 10), (10, 40))]
    assert counts[0] == counts[1], counts
    session.rollback()
    assert session.scalar(select(func.count()).where(Click.campaign_id == "autumn")) == 50


def test_clicks_waiting_for_a_batch_of_sends_are_attributed_after_one_insert_of_the_sends(engine, session):
    """Clicks consumed before their sends: each send's attribution UPDATE needs the send inserted. Done per send it
    flushed the batch's rows a few at a time; it waits for the commit, after one INSERT of all the sends."""
    run_batch(engine, "clicks", [click("mobivate", m, n=n) for n, m in enumerate(ids(0, 30)[::3])])
    statements = run_batch(engine, "sent-messages",
                           [sent("mobivate", m.lower(), campaign_id="autumn") for m in ids(0, 30)])
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO SENT_MESSAGES")]
    assert len(inserts) == (1 if engine.dialect.name == "postgresql" else 30)
    session.rollback()
    assert session.scalar(select(func.count()).where(Click.campaign_id == "autumn")) == 10

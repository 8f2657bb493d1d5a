"""Poison records never stop a consumer group (issue 12, item 2): a record that decodes but fails in the database
on every attempt is isolated and dead-lettered with its reason while the events behind it are applied, and the
group's lag reaches zero; an outage (the database away) is still retried without dead-lettering anything.

Real broker (tansu, tests/conftest.py) and real SQLite and PostgreSQL. Records are our own payloads
(tests/processors/factories.py), published with one field edited the way the issue's probe did (null, wrong type,
longer than its column).
"""

from __future__ import annotations

import json
import logging
import time

import sqlalchemy
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.events import (
    TOPIC_DELIVERY_RECEIPTS,
    TOPIC_INBOUND_MESSAGES,
    TOPIC_LINK_CLICKS,
    TOPIC_SENT_MESSAGES,
    DeliveryReceipt,
    Envelope,
    topic_name,
)
from processors.db import upgrade
from processors.db.models import Click, OptOutHistory, ProcessedEvent, Receipt, SentMessage
from processors.runtime import BATCH_ATTEMPTS, EVENT_ATTEMPTS, Processor
from tests.conftest import consume_all
from tests.processors.factories import (
    click,
    create_all_topics,
    inbound,
    publish,
    publish_raw,
    receipt,
    running,
    running_processor,
    sent,
    settings_for,
    wait_for,
)
from tests.reliability.readings import consumer_lag


def headers_of(record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def publish_poison(settings, payload, **edits) -> bytes:
    """Publish a payload's record (its key and CloudEvents headers) with some `data` fields replaced."""
    envelope = Envelope.wrap(payload)
    data = json.loads(envelope.value())
    data.update(edits)
    value = json.dumps(data).encode()
    publish_raw(settings, envelope.topic, envelope.key.encode(), value, envelope.headers())
    return value


def rows(url: str, model) -> int:
    engine = sqlalchemy.create_engine(url)
    try:
        with Session(engine) as session:
            return session.scalar(select(func.count()).select_from(model)) or 0
    finally:
        engine.dispose()


def store_receipt(envelope, uow) -> None:
    """A receipts row whose NOT NULL raw_message_id comes from the optional client_ref: the shape of the issue's
    defect (a field the decoder lets through as null, a column that refuses it), on a column the decoder cannot
    know about."""
    uow.session.add(Receipt(
        event_id=envelope.id, vendor="twilio", message_id=envelope.payload.message_id,
        raw_message_id=envelope.payload.client_ref, status="delivered", vendor_status="DELIVERED",
        received_at=envelope.payload.received_at, raw={}, parked=True, outcome="parked",
    ))


def test_a_record_that_breaks_a_constraint_is_dead_lettered_and_the_records_behind_it_applied(
    broker, topic_prefix, database_url, caplog
):
    upgrade(database_url)
    settings = settings_for(broker.bootstrap_servers, topic_prefix, database_url, consumer_max_poll_records=50)
    create_all_topics(settings)
    # one message id: one key, one partition, so every good receipt waits behind the poison
    poison = publish(settings, [receipt("twilio", "SMp", "delivered", 0, client_ref=None)])[0]
    good = publish(settings, [receipt("twilio", "SMp", "delivered", n, client_ref=f"r{n}") for n in range(1, 21)])
    processor = Processor("constrained", (TOPIC_DELIVERY_RECEIPTS,), {DeliveryReceipt.ce_type: store_receipt})
    caplog.set_level(logging.INFO, logger="processors.runtime")
    started = time.monotonic()
    with running_processor(processor, settings) as result:
        wait_for(lambda: rows(database_url, Receipt) == len(good), timeout=30)
        applied = time.monotonic() - started
    stats = result["stats"]
    assert stats.dead_lettered == 1 and stats.handled == len(good)
    dlq = consume_all(broker.bootstrap_servers, topic_name(topic_prefix, TOPIC_DELIVERY_RECEIPTS) + ".dlq", 1)
    assert [headers_of(r)["ce_id"] for r in dlq] == [poison.id]
    reason = headers_of(dlq[0])["dlq_reason"]
    assert reason.startswith(f"handler_error after {EVENT_ATTEMPTS} attempts: IntegrityError")
    assert "raw_message_id" in reason and "Failing row" not in reason  # PostgreSQL's DETAIL would carry the row
    with Session(sqlalchemy.create_engine(database_url)) as session:
        processed = set(session.scalars(select(ProcessedEvent.event_id)))
    assert processed == {e.id for e in good}
    # the conflict was retried whole BATCH_ATTEMPTS - 1 times, logged once at the start of the streak, not per retry
    assert stats.retries == BATCH_ATTEMPTS - 1
    assert caplog.text.count("transient failure, backing off") == 1
    assert "recovered after 2 transient failures" in caplog.text
    assert caplog.text.count("isolating the failing event") == 1
    print(f"\npoison receipt ({database_url.split(':')[0]}): dead-lettered and 20 receipts behind it applied "
          f"{applied:.1f}s after start, {stats.retries} whole-batch retries")


def test_a_database_outage_on_one_event_is_retried_never_dead_lettered(broker, topic_prefix, sqlite_url):
    upgrade(sqlite_url)
    settings = settings_for(broker.bootstrap_servers, topic_prefix, sqlite_url, consumer_max_poll_records=5)
    create_all_topics(settings)
    outage = {"left": BATCH_ATTEMPTS + EVENT_ATTEMPTS}  # more failures than isolation would ever allow

    def handler(envelope, uow):
        if envelope.payload.message_id == "SM3" and outage["left"]:
            outage["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        store_receipt(envelope, uow)

    envelopes = publish(settings, [receipt("twilio", f"SM{n}", "delivered", n, client_ref="r") for n in range(8)])
    processor = Processor("outage", (TOPIC_DELIVERY_RECEIPTS,), {DeliveryReceipt.ce_type: handler})
    with running_processor(processor, settings) as result:
        wait_for(lambda: rows(sqlite_url, Receipt) == len(envelopes), timeout=60)
    assert outage["left"] == 0
    assert result["stats"].dead_lettered == 0 and result["stats"].retries >= BATCH_ATTEMPTS + EVENT_ATTEMPTS


def test_every_processor_dead_letters_poison_of_every_kind_and_its_lag_reaches_zero(
    broker, topic_prefix, database_url
):
    upgrade(database_url)
    settings = settings_for(broker.bootstrap_servers, topic_prefix, database_url)
    create_all_topics(settings)
    long_id = "9" * 300  # longer than any id column (191)
    poisons = {
        TOPIC_SENT_MESSAGES: [
            publish_poison(settings, sent("twilio", "SMg"), recipient=None),  # the sent message
            publish_poison(settings, sent("twilio", "SMg"), parts="2"),
        ],
        TOPIC_DELIVERY_RECEIPTS: [
            publish_poison(settings, receipt("twilio", "SMg", "delivered", 5), received_at=None),  # the issue's
            publish_poison(settings, receipt("twilio", "SMg", "delivered", 6), count=True),
        ],
        TOPIC_INBOUND_MESSAGES: [
            publish_poison(settings, inbound("STOP", n=1), from_=None),
            publish_poison(settings, inbound("STOP", n=2), text=42),
        ],
        TOPIC_LINK_CLICKS: [
            publish_poison(settings, click("twilio", "SMg", n=1), url=None),
            publish_poison(settings, click("twilio", "SMg", n=2), clicked_at=1772366400),
        ],
    }
    # longer than its column: PostgreSQL refuses it in the handler (DataError, isolated); SQLite stores it
    too_long = {
        TOPIC_SENT_MESSAGES: publish_poison(settings, sent("twilio", "SMlong"), message_id=long_id),
        TOPIC_DELIVERY_RECEIPTS: publish_poison(settings, receipt("twilio", "SMlong", "failed"), message_id=long_id),
        TOPIC_INBOUND_MESSAGES: publish_poison(settings, inbound("STOP", n=3), from_=long_id),
        TOPIC_LINK_CLICKS: publish_poison(settings, click("twilio", "SMlong", n=3), message_id=long_id),
    }
    publish(settings, [sent("twilio", "SMg"), receipt("twilio", "SMg", "delivered", 7), inbound("STOP", n=4),
                       click("twilio", "SMg", n=4)])
    on_postgresql = database_url.startswith("postgresql")
    with running(settings):
        wait_for(lambda: not any(consumer_lag(broker.bootstrap_servers, topic_prefix).values()), timeout=60)
    assert rows(database_url, SentMessage) == (1 if on_postgresql else 2)
    assert rows(database_url, OptOutHistory) == (1 if on_postgresql else 2)
    assert rows(database_url, Click) == (1 if on_postgresql else 2)
    engine = sqlalchemy.create_engine(database_url)
    with Session(engine) as session:
        assert session.scalar(select(SentMessage.status).where(SentMessage.message_id == "smg")) == "delivered"
    engine.dispose()
    for topic, values in poisons.items():
        expected = values + ([too_long[topic]] if on_postgresql else [])
        dlq = consume_all(broker.bootstrap_servers, topic_name(topic_prefix, topic) + ".dlq", len(expected))
        assert sorted(r.value for r in dlq) == sorted(expected), topic
        reasons = [headers_of(r)["dlq_reason"] for r in dlq]
        assert sum(reason.startswith("invalid_event") for reason in reasons) == 2, reasons
        assert all(long_id not in reason for reason in reasons)

"""Bounded waits: no processor loop waits for ever on a row lock, an abandoned transaction, a dead server or Kafka."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import sqlalchemy
from kafka import TopicPartition
from kafka.errors import RebalanceInProgressError
from sqlalchemy.exc import OperationalError

from core.settings import load_settings
from processors.clients import KafkaClients
from processors.db.engine import POSTGRES_OPTIONS, make_engine, postgres_connect_args
from processors.registry import PROCESSORS
from processors.runtime import REJOIN_AFTER_REFUSALS, ProcessorLoop, is_transient
from receiver.vendors import canonical_message_id


def test_guards_apply_to_postgresql_only_and_the_url_wins():
    guarded = postgres_connect_args("postgresql+psycopg://u@db/smshooks")
    assert guarded["options"] == POSTGRES_OPTIONS and "lock_timeout" in POSTGRES_OPTIONS
    assert guarded["keepalives"] == 1 and guarded["connect_timeout"] == 10
    own = postgres_connect_args("postgresql+psycopg://u@db/smshooks?options=-c%20lock_timeout%3D5s&connect_timeout=3")
    assert "options" not in own and "connect_timeout" not in own and own["keepalives"] == 1
    assert postgres_connect_args("sqlite:///x.db") == {}


def test_a_batch_lookup_repeated_on_a_table_without_statistics_keeps_using_the_unique_index(postgres_url):
    """A fresh database, before autovacuum's first ANALYZE: PostgreSQL's generic plan for the batch lookup (made
    after 5 executions of a prepared statement) read every sent message of the vendor through the client-reference
    index; half the backlog bench's runs paid 5x the database CPU per event for it. Each execution is planned for
    its own values instead."""
    from processors.db import upgrade

    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    lookup = ("SELECT id FROM sent_messages WHERE vendor = $1 AND message_id = ANY($2) ORDER BY message_id "
              "FOR NO KEY UPDATE")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO sent_messages (vendor, message_id, raw_message_id, recipient, parts, sent_at, received_at,"
                " status, conflict, source_event_id) SELECT 'generic', 'm' || i, 'm', '447700900001', 1, now(), now(),"
                " 'submitted', false, 'e' || i FROM generate_series(1, 20000) i")
            connection.exec_driver_sql(f"PREPARE lookup(varchar, varchar[]) AS {lookup}")
            plans = ["\n".join(connection.exec_driver_sql(
                "EXPLAIN EXECUTE lookup('generic', ARRAY['m1', 'm2', 'm3'])").scalars()) for _ in range(8)]
    finally:
        engine.dispose()
    assert all("uq_sent_messages_vendor_message_id" in plan for plan in plans), plans[-1]


def test_sessions_carry_the_timeouts(postgres_url):
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(sqlalchemy.text("SHOW lock_timeout")) == "1min"
            assert connection.scalar(sqlalchemy.text("SHOW idle_in_transaction_session_timeout")) == "5min"
            assert connection.scalar(sqlalchemy.text("SHOW plan_cache_mode")) == "force_custom_plan"
    finally:
        engine.dispose()


def test_a_lock_held_by_a_stuck_session_ends_in_a_retried_error(postgres_url):
    """A row lock nobody releases (its client is gone) fails the waiter with an error the runtime retries."""
    options = quote("-c lock_timeout=300ms")
    engine = make_engine(f"{postgres_url}?options={options}")
    holder = make_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE TABLE rows (id int PRIMARY KEY)"))
            connection.execute(sqlalchemy.text("INSERT INTO rows VALUES (1)"))
        stuck = holder.connect()
        stuck.begin()
        stuck.execute(sqlalchemy.text("SELECT id FROM rows WHERE id = 1 FOR UPDATE"))
        failure: list[BaseException] = []

        def wait_for_the_row() -> None:
            try:
                with engine.begin() as connection:
                    connection.execute(sqlalchemy.text("SELECT id FROM rows WHERE id = 1 FOR NO KEY UPDATE"))
            except BaseException as error:  # noqa: BLE001 - handed to the assertion below
                failure.append(error)

        waiter = threading.Thread(target=wait_for_the_row)
        waiter.start()
        waiter.join(timeout=10)
        assert not waiter.is_alive(), "the lock wait did not end: lock_timeout is not applied"
        stuck.rollback()
        stuck.close()
        assert len(failure) == 1 and isinstance(failure[0], OperationalError)
        assert "lock timeout" in str(failure[0]) and is_transient(failure[0])
    finally:
        engine.dispose()
        holder.dispose()


class RecordingConsumer:
    """The consumer calls commit and rewind make, with kafka-python's signatures; records their timeouts."""

    def __init__(self) -> None:
        self.timeouts: dict[str, int | None] = {}
        self.sought: int | None = None
        self.partition = TopicPartition("sms.delivery-receipts", 0)

    def assignment(self):
        return {self.partition}

    def commit(self, offsets=None, timeout_ms=None):
        self.timeouts["commit"] = timeout_ms

    def committed(self, partition, metadata=False, timeout_ms=None):
        self.timeouts["committed"] = timeout_ms
        return 7

    def seek(self, partition, offset):
        self.sought = offset


def test_consumer_calls_on_the_coordinator_are_bounded():
    """kafka-python waits without limit by default; after a rebalance that blocked a loop with nothing logged."""
    loop = ProcessorLoop(PROCESSORS["reconciliation"], load_settings(environ={}), threading.Event(), None,
                         clients=KafkaClients(load_settings(environ={})), canonical_id=canonical_message_id)
    loop.consumer = consumer = RecordingConsumer()
    loop._commit_offsets([SimpleNamespace(topic="sms.delivery-receipts", partition=0, offset=6)])
    loop._rewind()
    assert consumer.sought == 7
    for call in ("commit", "committed"):
        assert consumer.timeouts[call] is not None and 0 < consumer.timeouts[call] <= 60_000, call


class RefusedCommitConsumer(RecordingConsumer):
    """A consumer the group dropped while its batch ran: the broker refuses its commit (Apache Kafka's answer)."""

    closed = False

    def commit(self, offsets=None, timeout_ms=None):
        raise RebalanceInProgressError("Offset commit cannot be completed since the consumer is undergoing a rebalance")

    def close(self, autocommit=True, timeout_ms=None):
        self.closed = not autocommit


class NewConsumers(KafkaClients):
    """The real clients' maker, except that consumers are recording fakes."""

    def consumer(self, processor):
        return RecordingConsumer()


def test_a_commit_the_group_refuses_rejoins_with_a_new_consumer():
    """kafka-python 3.0 kept retrying such a commit with the old consumer and never rejoined: the lag froze."""
    settings = load_settings(environ={})
    loop = ProcessorLoop(PROCESSORS["reconciliation"], settings, threading.Event(), None,
                         clients=NewConsumers(settings), canonical_id=canonical_message_id)
    loop.consumer = dropped = RefusedCommitConsumer()
    batch = [SimpleNamespace(topic="sms.delivery-receipts", partition=0, offset=6)]
    for _ in range(REJOIN_AFTER_REFUSALS - 1):  # a rebalance: the next poll completes it, the consumer stays
        with pytest.raises(RebalanceInProgressError):
            loop._commit_offsets(batch)
        assert loop.consumer is dropped and not dropped.closed
    with pytest.raises(RebalanceInProgressError):  # the step still fails: the loop backs off and rewinds
        loop._commit_offsets(batch)
    assert dropped.closed and isinstance(loop.consumer, RecordingConsumer) and loop.consumer is not dropped
    loop._commit_offsets(batch)  # the new member's commit goes through
    assert loop.refused_commits == 0
    assert is_transient(RebalanceInProgressError())


class RecordingProducer:
    """kafka-python's producer calls the dead-lettering makes, remembering what was sent."""

    def __init__(self):
        self.sent = []

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append((topic, value))
        return SimpleNamespace(get=lambda timeout=None: None)

    def flush(self, timeout=None):
        pass


def test_a_batch_read_again_after_a_refused_commit_does_not_dead_letter_its_poison_twice(sqlite_url):
    """Seen in suite runs: a rebalance refused the commit after the DLQ write, the batch was read again, and its
    undecodable record reached the DLQ twice."""
    from processors.db import upgrade
    from processors.db.engine import make_session_factory

    upgrade(sqlite_url)
    settings = load_settings(environ={})
    engine = make_engine(sqlite_url)
    loop = ProcessorLoop(PROCESSORS["opt-outs"], settings, threading.Event(), make_session_factory(engine),
                         clients=NewConsumers(settings), canonical_id=canonical_message_id)
    loop.consumer, loop.producer = RefusedCommitConsumer(), RecordingProducer()
    poison = SimpleNamespace(topic="sms.inbound-messages", partition=0, offset=3, key=b"k", value=b"{not json",
                             headers=[])
    try:
        with pytest.raises(RebalanceInProgressError):
            loop._process([poison])
        loop.consumer = RecordingConsumer()  # the rebalance completed; the batch is read again
        loop._process([poison])
    finally:
        engine.dispose()
    assert loop.producer.sent == [("sms.inbound-messages.dlq", b"{not json")]
    assert loop.stats.dead_lettered == 1 and loop.dead_lettered == set()

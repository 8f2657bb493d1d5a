"""Kafka away: every failed connection attempt (topic check, producer, consumer, a processor's connect loop, the
receiver's publisher) must leave no thread or file descriptor behind (issue 12, item 3).

No fixtures from elsewhere: the "broker" is a free local port nobody listens on, so every bootstrap fails the way
it does while Kafka is down. Counts are read from /proc/self/fd and threading.active_count().
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from core.kafka_clients import build
from core.topics import create_missing_topics
from processors.clients import KafkaClients
from processors.registry import PROCESSORS
from processors.runtime import ProcessorLoop
from receiver.confluent_publisher import ConfluentPublisher
from receiver.publisher import KafkaPublisher, PublishUnavailable
from receiver.vendors import canonical_message_id
from smshooks.broker import free_port
from tests.processors.factories import settings_for

ATTEMPTS = 8


@pytest.fixture(autouse=True)
def quiet_logs(caplog):
    """Keep log records out of pytest's capture: a kept record's exception (kafka-python's, or ours in "broker not
    ready") holds the socket of a refused connection until the test ends, a leak no real log handler causes."""
    caplog.set_level(logging.CRITICAL)


def resources() -> tuple[int, int]:
    """Live Python threads and open file descriptors of this process."""
    gc.collect()  # a leak must survive collection to count: only what is really held
    return threading.active_count(), len(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    """Every thread of this process, librdkafka's C threads included."""
    return len(os.listdir("/proc/self/task"))


def closed_port_settings(tmp_path, **overrides):
    """Settings whose broker is a port nobody listens on, with short timeouts."""
    values = {"publish_timeout_seconds": 0.3}
    values.update(overrides)
    return settings_for(f"127.0.0.1:{free_port()}", "leak.", f"sqlite:///{tmp_path / 'db.sqlite'}", **values)


def assert_bounded(before: tuple[int, int], after: tuple[int, int]) -> None:
    """No thread left, at most two descriptors of slack (logging, pytest capture) after ATTEMPTS failures."""
    assert after[0] <= before[0], f"threads {before[0]} -> {after[0]} after {ATTEMPTS} failed attempts"
    assert after[1] <= before[1] + 2, f"fds {before[1]} -> {after[1]} after {ATTEMPTS} failed attempts"


def fail_repeatedly(attempt, refusal: type[Exception] = KafkaError) -> None:
    """Run `attempt` ATTEMPTS times; each must fail the way it does while Kafka is away (nothing else)."""
    for _ in range(ATTEMPTS):
        try:
            attempt()
        except refusal:
            continue
        raise AssertionError("an attempt against a closed port succeeded")


def test_failed_topic_checks_close_their_admin_client(tmp_path):
    settings = closed_port_settings(tmp_path)
    fail_repeatedly(lambda: create_missing_topics(settings, ["sms.delivery-receipts"]))  # warm-up: imports, logging
    before = resources()
    fail_repeatedly(lambda: create_missing_topics(settings, ["sms.delivery-receipts"]))
    assert_bounded(before, resources())


def test_failed_producers_and_consumers_close_their_network_client(tmp_path):
    settings = closed_port_settings(tmp_path)
    bootstrap = settings.kafka_bootstrap_servers

    def producer():
        build(KafkaProducer, bootstrap_servers=bootstrap, bootstrap_timeout_ms=300, max_block_ms=300)

    def consumer():
        build(KafkaConsumer, "t", bootstrap_servers=bootstrap, group_id="g", bootstrap_timeout_ms=300)

    for attempt in (producer, consumer):
        fail_repeatedly(attempt)
        before = resources()
        fail_repeatedly(attempt)
        assert_bounded(before, resources())


@pytest.mark.parametrize("publisher_class", [KafkaPublisher, ConfluentPublisher])
def test_the_receivers_publisher_leaves_nothing_behind_while_kafka_is_away(tmp_path, publisher_class):
    publisher = publisher_class(closed_port_settings(tmp_path))

    def publish():
        publisher.publish_raw("sms.callbacks.rejected", "k", [], b"{}")

    fail_repeatedly(publish, PublishUnavailable)
    before, tasks = resources(), os_threads()
    fail_repeatedly(publish, PublishUnavailable)
    assert_bounded(before, resources())
    assert os_threads() <= tasks, "librdkafka or kafka-python threads were left behind"  # not Python threads
    publisher.close()


def test_a_processor_waiting_for_kafka_holds_no_more_threads_or_fds_when_stopped(tmp_path, monkeypatch):
    settings = closed_port_settings(tmp_path)
    checks = []

    def counted_check(*args):
        checks.append(1)
        return create_missing_topics(*args)

    monkeypatch.setattr("processors.clients.create_missing_topics", counted_check)
    stop = threading.Event()
    loop = ProcessorLoop(PROCESSORS["reconciliation"], settings, stop, session_factory=None,
                         clients=KafkaClients(settings), canonical_id=canonical_message_id)  # never reaches the db
    loop.backoff.maximum = 0.2  # many attempts in a short test
    before = resources()
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(loop.run()), daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while len(checks) < ATTEMPTS and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive() and outcome, "the loop raised instead of waiting for Kafka"
    assert len(checks) >= ATTEMPTS
    assert_bounded(before, resources())

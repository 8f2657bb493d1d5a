"""Processor metrics: counters from the runtime's Stats, lag per partition, database gauges, own HTTP port."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import urllib.request
from types import SimpleNamespace

from kafka import TopicPartition

from core.settings import load_settings
from processors import observability
from processors.db import upgrade
from processors.db.engine import make_engine, make_session_factory
from processors.runtime import Stats
from smshooks.broker import free_port
from tests.ops.conftest import value


class FakeConsumer:
    """Just the three calls lag needs, with kafka-python's signatures; records the timeouts it is given."""

    def __init__(self, ends: dict[TopicPartition, int], positions: dict[TopicPartition, int | None]):
        self.ends, self.positions = ends, positions
        self.timeouts: list[int | None] = []

    def assignment(self):
        return set(self.positions)

    def end_offsets(self, partitions, timeout_ms=None):
        self.timeouts.append(timeout_ms)
        return {p: self.ends[p] for p in partitions}

    def position(self, partition, timeout_ms=None):
        """None, as kafka-python answers when the position is not known within the timeout."""
        self.timeouts.append(timeout_ms)
        return self.positions[partition]


def record(topic: str, partition: int, headers=()):
    return SimpleNamespace(topic=topic, partition=partition, headers=list(headers))


def test_metrics_server_exposes_batches_lag_and_database_gauges(sqlite_url, monkeypatch):
    # a processor run earlier in this test process may have started its server already: start ours regardless
    monkeypatch.setattr(observability, "_server_started", False)
    port = free_port()
    assert observability.start_metrics_server(port, "127.0.0.1")
    assert not observability.start_metrics_server(port, "127.0.0.1")  # idempotent

    stats = Stats(batches=1, handled=3, duplicates=1, dead_lettered=1)
    observability.record_batch("test-proc", stats, [record("sms.delivery-receipts", 0)] * 5, 0.012)
    stats.handled, stats.relayed, stats.settled, stats.swept = 5, 4, 2, 1
    observability.sync_counters("test-proc", stats)  # what refresh() does between batches

    first, second = TopicPartition("sms.delivery-receipts", 0), TopicPartition("sms.delivery-receipts", 1)
    observability.record_consumer_lag("test-proc", FakeConsumer({first: 100, second: 7}, {first: 60, second: 7}))
    observability.record_consumer_lag("test-proc", FakeConsumer({first: 100}, {first: 90}))  # 1 was revoked
    # a position not known in time keeps the last reading (10), rather than reporting the whole log as lag
    slow = FakeConsumer({first: 120}, {first: None})
    observability.record_consumer_lag("test-proc", slow)
    # every call that waits on the broker is bounded: an unbounded one stalled a consumer loop after a rebalance
    assert slow.timeouts and all(t is not None and 0 < t <= 5000 for t in slow.timeouts)

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        settings = load_settings(environ={}, overrides={"database_url": sqlite_url})
        observability.refresh_database_gauges(make_session_factory(engine), settings)
    finally:
        engine.dispose()

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    events = "smshooks_processor_events_total"
    assert value(text, events, processor="test-proc", outcome="handled") == 5
    assert value(text, events, processor="test-proc", outcome="duplicate") == 1
    assert value(text, events, processor="test-proc", outcome="dead_lettered") == 1
    assert value(text, "smshooks_processor_dead_lettered_total", processor="test-proc",
                 topic="sms.delivery-receipts") == 1
    assert value(text, "smshooks_outbox_relayed_total", processor="test-proc") == 4
    assert value(text, "smshooks_processor_batches_total", processor="test-proc") == 1
    late = "smshooks_processor_late_matches_total"
    assert value(text, late, processor="test-proc", via="settle") == 2
    assert value(text, late, processor="test-proc", via="sweep") == 1
    lag = {"processor": "test-proc", "topic": "sms.delivery-receipts"}
    assert value(text, "smshooks_consumer_lag", partition="0", **lag) == 10
    # the revoked partition is gone (other tests' processors in this process may report their own partitions)
    assert not [line for line in text.splitlines() if 'processor="test-proc"' in line and 'partition="1"' in line]
    for gauge in ("smshooks_parked_receipts", "smshooks_unmatched_receipts", "smshooks_outbox_backlog"):
        assert f"{gauge} 0.0" in text
    assert "smshooks_missing_receipts" in text


def test_batch_log_line_is_json_with_request_ids():
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    existing = [h for h in root.handlers if getattr(h, "smshooks_json", False)]  # the receiver's, in a full run
    for handler in existing:
        root.removeHandler(handler)
    observability.configure_logging("INFO", stream)
    try:
        observability.record_batch("log-proc", Stats(batches=1, handled=2), [
            record("sms.inbound-messages", 2, [("ce_requestid", b"req-9")]),
            record("sms.inbound-messages", 2),
        ], 0.004)
    finally:
        for handler in [h for h in root.handlers if getattr(h, "smshooks_json", False)]:
            root.removeHandler(handler)
        for handler in existing:
            root.addHandler(handler)
        root.setLevel(level)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines() if '"batch"' in text]
    assert line["processor"] == "log-proc" and line["handled"] == 2 and line["records"] == 2
    assert line["request_ids"] == ["req-9"] and line["partitions"] == ["sms.inbound-messages/2"]


def test_processor_port_binds_loopback_by_default_and_serves_readiness(broker, sqlite_url, monkeypatch):
    """Readiness of a processor is Kafka and its database; /metrics takes the optional metrics_token."""
    import inspect
    import urllib.error

    assert load_settings(environ={}).metrics_bind == "127.0.0.1"
    assert inspect.signature(observability.start_metrics_server).parameters["address"].default == "127.0.0.1"
    upgrade(sqlite_url)
    settings = load_settings(environ={}, overrides={
        "database_url": sqlite_url, "kafka_bootstrap_servers": broker.bootstrap_servers, "metrics_token": "t0k"})
    monkeypatch.setattr(observability, "_server_started", False)
    port = free_port()
    assert observability.start_metrics_server(port, settings.metrics_bind, settings.metrics_token,
                                              observability.processor_readiness(settings))
    base = f"http://127.0.0.1:{port}"
    ready = json.loads(urllib.request.urlopen(base + "/readyz", timeout=10).read())
    assert ready == {"status": "ready", "checks": {"kafka": True, "database": True}}
    try:
        urllib.request.urlopen(base + "/metrics", timeout=5)
        raise AssertionError("metrics served without the token")
    except urllib.error.HTTPError as error:
        assert error.code == 401
    scraped = urllib.request.urlopen(urllib.request.Request(base + "/metrics", headers={"Authorization": "Bearer t0k"}),
                                     timeout=5)
    assert scraped.headers["Content-Type"].count("charset") == 1

    broken = dataclasses.replace(settings, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
                                 kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    assert observability.processor_readiness(broken)() == {"kafka": False, "database": False}

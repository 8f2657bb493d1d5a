"""Event payload builders and small helpers for the processors tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaProducer

from core.events import (
    ALL_TOPICS,
    DeliveryReceipt,
    Envelope,
    InboundMessage,
    LinkClick,
    Payload,
    SentMessage,
    topic_name,
)
from core.settings import Settings
from core.topics import create_missing_topics
from processors.clients import KafkaClients
from processors.registry import PROCESSORS, run_processors
from processors.runtime import Processor, run
from receiver.vendors import canonical_message_id

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A fixed test time, `seconds` after BASE."""
    return BASE + timedelta(seconds=seconds)


def sent(vendor: str, message_id: str, recipient: str = "+447700900001", **extra: Any) -> SentMessage:
    """A sent message."""
    values: dict[str, Any] = {"sent_at": at(0), "received_at": at(1), "sender": "+447700900999"}
    values.update(extra)
    return SentMessage(vendor=vendor, message_id=message_id, recipient=recipient, **values)


def receipt(vendor: str, message_id: str, status: str, seconds: float = 10, **extra: Any) -> DeliveryReceipt:
    """A delivery receipt; `seconds` sets both vendor and receive time (and so the event id)."""
    values: dict[str, Any] = {
        "vendor_status": extra.pop("vendor_status", status.upper()),
        "received_at": at(seconds),
        "occurred_at": at(seconds),
    }
    values.update(extra)
    return DeliveryReceipt(vendor=vendor, message_id=message_id, status=status, **values)


def inbound(text: str, from_: str = "+447700900123", to: str = "+447700900999", n: int = 0, **extra) -> InboundMessage:
    """An inbound message; `n` makes the message id (and event id) unique."""
    return InboundMessage(
        vendor=extra.pop("vendor", "twilio"),
        message_id=f"SM{n:06d}",
        from_=from_,
        to=to,
        text=text,
        received_at=at(100 + n),
        **extra,
    )


def click(vendor: str, message_id: str, url: str = "https://example.test/offer", n: int = 0) -> LinkClick:
    """A link click."""
    return LinkClick(
        vendor=vendor,
        message_id=message_id,
        recipient="+447700900001",
        url=url,
        received_at=at(200 + n),
        clicked_at=at(200 + n),
        ip_address=f"192.0.2.{n % 250}",
    )


def settings_for(bootstrap: str, prefix: str, database_url: str, **overrides: Any) -> Settings:
    """Settings for a test: its broker, prefix and database, small consumer timings."""
    values = {
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "database_url": database_url,
        "topic_partitions": 3,
        "consumer_session_timeout_ms": 6000,
        "consumer_heartbeat_interval_ms": 500,
        "consumer_poll_timeout_ms": 100,
        "sweep_interval_seconds": 1.0,
    }
    values.update(overrides)
    from core.settings import load_settings

    return load_settings(environ={}, overrides=values)


def create_all_topics(settings: Settings) -> None:
    """Create every contract topic (and DLQs) under the test prefix before publishing."""
    names = [topic_name(settings.topic_prefix, t) for t in ALL_TOPICS]
    create_missing_topics(settings, names + [f"{n}.dlq" for n in names])


def publish(settings: Settings, payloads: Iterable[Payload]) -> list[Envelope]:
    """Publish each payload as a CloudEvent to its prefixed topic, waiting for the acks."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5)
    envelopes = []
    try:
        futures = []
        for payload in payloads:
            envelope = Envelope.wrap(payload)
            envelopes.append(envelope)
            futures.append(
                producer.send(
                    topic_name(settings.topic_prefix, envelope.topic),
                    key=envelope.key.encode(),
                    value=envelope.value(),
                    headers=envelope.headers(),
                )
            )
        producer.flush()
        for future in futures:
            future.get(timeout=10)
    finally:
        producer.close()
    return envelopes


def publish_raw(settings: Settings, topic: str, key: bytes | None, value: bytes | None, headers=None) -> None:
    """Publish one arbitrary record (for poison-pill tests)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    try:
        producer.send(topic_name(settings.topic_prefix, topic), key=key, value=value, headers=headers or []).get(10)
    finally:
        producer.close()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until `condition()` is truthy; fail the test with the last value on timeout."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")


def running(settings: Settings, names: Iterable[str] = tuple(PROCESSORS)):
    """Run registered processors in a background thread for the duration of the block; re-raise their failure."""
    return _in_background(lambda stop: run_processors(list(names), settings, stop, clients=KafkaClients(settings),
                                                              canonical_id=canonical_message_id))


def running_processor(processor: Processor, settings: Settings):
    """Run one (test-built) processor in a background thread for the block; `outcome["stats"]` after it."""
    return _in_background(lambda stop: run(processor, settings, stop))


@contextmanager
def _in_background(start: Callable[[threading.Event], Any]):
    """Call `start(stop)` in a thread for the block, set the stop flag after it, and re-raise its failure."""
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def _target() -> None:
        try:
            outcome["stats"] = start(stop)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread below
            outcome["error"] = error

    thread = threading.Thread(target=_target, daemon=True)
    thread.start()
    try:
        yield outcome
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "processors did not stop within 30s of the stop flag"
    if "error" in outcome:
        raise outcome["error"]

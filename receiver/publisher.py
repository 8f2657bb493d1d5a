"""Publishing to Kafka: one idempotent producer per worker process, answers only after every ack."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

from kafka import KafkaProducer
from kafka.errors import KafkaError

from core.events import ALL_TOPICS, Envelope, topic_name
from core.kafka_clients import build
from core.settings import Settings
from core.topics import ensure_topics

log = logging.getLogger(__name__)


class PublishUnavailable(RuntimeError):
    """Kafka did not acknowledge in time; the caller answers 503."""


class KafkaKnownDown(PublishUnavailable):
    """Refused without sending anything: the last publish failed and this is not the time to probe again."""


Record = tuple[str, bytes, list[tuple[str, bytes]], bytes]  # topic, key, headers, value


# While Kafka is known to be down, one request this often still tries it (and sees it come back); the others fail
# at once instead of each holding a thread for the publish timeout (8 threads x 5 s answered 1.6 requests/s).
PROBE_INTERVAL_SECONDS = 2.0


class Publisher:
    """Interface: publish envelopes and rejected callbacks, durably, or raise PublishUnavailable."""

    settings: Settings
    _kafka_down = False  # the last publish failed; set back by the next one that succeeds
    _next_probe_at = 0.0

    def publish(self, envelopes: list[Envelope], spool: bool = True) -> None:
        """Every envelope on its topic, acknowledged, or PublishUnavailable (`spool` matters to the spooling
        publisher only)."""
        prefix = self.settings.topic_prefix
        self._publish([
            (topic_name(prefix, e.topic), e.key.encode(), e.headers(), e.value()) for e in envelopes
        ])

    def publish_raw(self, topic: str, key: str, headers: list[tuple[str, bytes]], value: bytes) -> None:
        """One record that is not an event (a rejected callback), acknowledged, or PublishUnavailable."""
        self._publish([(topic_name(self.settings.topic_prefix, topic), key.encode(), headers, value)])

    def _publish(self, records: list[Record]) -> None:
        """Send and wait, remembering whether Kafka is down; costs one flag test while it is up."""
        if self._kafka_down:
            self.while_kafka_down()
        try:
            self._send_and_wait(records)
        except PublishUnavailable:
            self._kafka_down = True
            self._next_probe_at = time.monotonic() + PROBE_INTERVAL_SECONDS
            raise
        if self._kafka_down:
            self._kafka_down = False

    def while_kafka_down(self) -> None:
        """What a publish does while Kafka is known to be down: fail fast (503 with Retry-After at once), except one
        request per PROBE_INTERVAL_SECONDS that still tries Kafka. With a spool (receiver/spooling.py) the failure
        sends the records to the spool at once instead of a 503."""
        now = time.monotonic()
        if now < self._next_probe_at:
            raise KafkaKnownDown("Kafka is down (the last publish failed); not waiting for it")
        # this request probes; no other probe while it may still be waiting for the publish timeout
        self._next_probe_at = now + self.settings.publish_timeout_seconds + PROBE_INTERVAL_SECONDS

    def _send_and_wait(self, records: list[Record]) -> None:
        raise NotImplementedError

    _topics_ready = False

    def _ensure_topics(self, deadline: float) -> None:
        """Create missing topics once per producer, within what is left of this request's timeout (every request
        thread of a worker may be here at once while Kafka is away)."""
        if self._topics_ready:
            return
        remaining = max(0.05, deadline - time.monotonic())
        try:
            ensure_topics(dataclasses.replace(self.settings, publish_timeout_seconds=remaining), ALL_TOPICS)
            self._topics_ready = True
        except Exception as exc:  # noqa: BLE001 - any admin failure means "broker not usable now"
            raise PublishUnavailable(f"cannot create topics: {exc}") from exc

    def ready(self) -> bool:
        """Whether the broker answers metadata requests now."""
        raise NotImplementedError


class KafkaPublisher(Publisher):
    """The real publisher. Created lazily after fork: a producer must never be shared across processes."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer: KafkaProducer | None = None
        self._pid: int | None = None
        self._topics_ready = False
        self._lock = threading.Lock()

    def _get_producer(self, deadline: float | None = None) -> KafkaProducer:
        """The producer of this process, created on first use; connecting never outlasts the request's deadline."""
        if deadline is None:
            deadline = time.monotonic() + self.settings.publish_timeout_seconds
        # While Kafka is away every thread of the worker queues here: wait only for what is left of our own
        # timeout, or the last thread in line would wait for every other thread's failed bootstrap in turn.
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise PublishUnavailable("timed out waiting for another request to connect to Kafka")
        try:
            if self._producer is None or self._pid != os.getpid():
                timeout_ms = int(self.settings.publish_timeout_seconds * 1000)
                remaining_ms = max(50, int((deadline - time.monotonic()) * 1000))
                try:
                    self._producer = build(
                        KafkaProducer,
                        bootstrap_servers=self.settings.kafka_bootstrap_servers.split(","),
                        acks="all",
                        enable_idempotence=True,
                        linger_ms=0,
                        max_block_ms=timeout_ms,
                        bootstrap_timeout_ms=remaining_ms,
                        request_timeout_ms=timeout_ms,
                        delivery_timeout_ms=max(timeout_ms + 1000, 2000),
                        retry_backoff_ms=100,
                        reconnect_backoff_max_ms=1000,
                        client_id=f"smshooks-receiver-{os.getpid()}",
                    )
                except KafkaError as exc:
                    raise PublishUnavailable(f"cannot connect to Kafka: {exc}") from exc
                self._pid = os.getpid()
                self._topics_ready = False
            producer = self._producer
        finally:
            self._lock.release()
        self._ensure_topics(deadline)
        return producer

    def _send_and_wait(self, records: list[Record]) -> None:
        """Send every record, then wait for every ack within the publish timeout."""
        if not records:
            return  # nothing to publish is an answer, not a wait (and no reason to doubt the producer)
        deadline = time.monotonic() + self.settings.publish_timeout_seconds
        producer = self._get_producer(deadline)
        try:
            futures = [
                producer.send(topic, value=value, key=key, headers=headers)
                for topic, key, headers, value in records
            ]
            for future in futures:
                future.get(timeout=max(0.05, deadline - time.monotonic()))
        except (KafkaError, TimeoutError) as exc:
            self._discard(producer)
            raise PublishUnavailable(f"Kafka did not acknowledge: {exc.__class__.__name__}: {exc}") from exc

    def _discard(self, producer: KafkaProducer) -> None:
        """Drop a producer after a failed publish so the next request starts clean (and re-checks topics)."""
        # Never wait long here: a request holding the lock may be bootstrapping a new producer.
        if not self._lock.acquire(timeout=0.1):
            return
        try:
            if self._producer is not producer:
                return  # another request already dropped it
            self._producer = None
            self._topics_ready = False
        finally:
            self._lock.release()
        # Closing a producer whose broker is gone blocks for seconds: do it off the request thread.
        threading.Thread(target=self._close_quietly, args=(producer,), daemon=True).start()

    @staticmethod
    def _close_quietly(producer: KafkaProducer) -> None:
        """Close a failed producer; its unsent records were already answered with 503."""
        try:
            producer.close(timeout=0, null_logger=True)
        except Exception:  # noqa: BLE001
            log.debug("closing a failed producer raised", exc_info=True)

    def ready(self) -> bool:
        try:
            producer = self._get_producer()
            return bool(producer.partitions_for(topic_name(self.settings.topic_prefix, ALL_TOPICS[0])))
        except Exception:  # noqa: BLE001
            return False

    def close(self) -> None:
        """Flush and close the producer of this process."""
        if self._producer is not None and self._pid == os.getpid():
            self._producer.close(timeout=2)
        self._producer = None


def make_publisher(settings: Settings) -> Publisher:
    """librdkafka when installed (or asked for), else kafka-python; see bench/receiver.py for why."""
    choice = settings.kafka_producer
    if choice in {"auto", "confluent"}:
        try:
            from receiver.confluent_publisher import ConfluentPublisher
        except ImportError:
            if choice == "confluent":
                raise
        else:
            return ConfluentPublisher(settings)
    return KafkaPublisher(settings)

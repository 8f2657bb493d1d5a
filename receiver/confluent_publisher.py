"""The receiver's fast publisher: librdkafka (confluent-kafka), idempotent, acks=all, one per worker process.

kafka-python's producer does its protocol work in Python on a thread that competes with the request threads for
the GIL; measured in bench/receiver.py, it caps a worker at a third of the reference rate. librdkafka does the
same work in C threads, so a request thread only enqueues and waits for its delivery callback.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from confluent_kafka import KafkaError, KafkaException, Producer

from core.events import ALL_TOPICS, topic_name
from core.settings import Settings
from receiver.publisher import Publisher, PublishUnavailable, Record

log = logging.getLogger(__name__)
POLL_SECONDS = 0.05
MIN_PRODUCER_AGE_SECONDS = 1.0


class Deliveries:
    """Counts delivery callbacks for one request; the request thread waits on it.

    The wait is a bare lock held until the last report releases it: threading.Event goes through a Python
    Condition and costs several times more per request on the hot path.
    """

    __slots__ = ("remaining", "errors", "lock", "done")

    def __init__(self, expected: int):
        self.remaining = expected
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.done = threading.Lock()
        self.done.acquire()

    def callback(self, error, message) -> None:
        """librdkafka's on_delivery: runs on the poller thread (or a closing flush)."""
        with self.lock:
            if error is not None:
                self.errors.append(str(error))
            self.remaining -= 1
            last = self.remaining == 0
        if last:
            self.done.release()

    def wait(self, timeout: float) -> bool:
        """Whether every report arrived within `timeout` seconds."""
        return self.done.acquire(timeout=timeout)


class ConfluentPublisher(Publisher):
    """Publishes with librdkafka; a daemon thread serves delivery callbacks. Created lazily after fork."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer: Producer | None = None
        self._pid: int | None = None
        self._topics_ready = False
        self._fatal = False
        self._created_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        atexit.register(self._stop.set)  # pollers must not log into closed streams at interpreter exit

    def _config(self) -> dict:
        """Idempotent, acks=all; a message not delivered within the publish timeout fails."""
        timeout_ms = int(self.settings.publish_timeout_seconds * 1000)
        return {
            "bootstrap.servers": self.settings.kafka_bootstrap_servers,
            "client.id": f"smshooks-receiver-{os.getpid()}",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,
            "message.timeout.ms": max(timeout_ms, 1000),
            "socket.timeout.ms": max(timeout_ms, 1000),
            "reconnect.backoff.max.ms": 1000,
            "error_cb": self._on_error,
            # librdkafka's own lines go through Python logging, so they are JSON and masked like ours; only
            # critical ones: a broker outage already logs one "publish failed" line per refused request
            "logger": logging.getLogger("rdkafka"),
            "log_level": 2,
        }

    def _on_error(self, error: KafkaError) -> None:
        """Client-level errors; a fatal one (e.g. lost idempotence state) means a fresh producer is needed."""
        if error.fatal():
            log.error("Kafka producer fatal error, will recreate: %s", error)
            self._fatal = True
        else:
            log.debug("Kafka producer error: %s", error)

    def _get_producer(self, deadline: float) -> Producer:
        """The producer of this process, with its poller thread, created on first use (never blocks on Kafka)."""
        with self._lock:
            if self._producer is None or self._pid != os.getpid() or self._fatal:
                self._producer = Producer(self._config())
                self._created_at = time.monotonic()
                self._pid = os.getpid()
                self._fatal = False
                self._topics_ready = False
                producer = self._producer
                threading.Thread(target=self._poll, args=(producer,), name="kafka-delivery", daemon=True).start()
            producer = self._producer
        self._ensure_topics(deadline)
        return producer

    def _poll(self, producer: Producer) -> None:
        """Serve delivery callbacks until this producer is replaced or the process stops."""
        while not self._stop.is_set() and (self._producer is producer):
            producer.poll(POLL_SECONDS)
        producer.poll(0)

    def _send_and_wait(self, records: list[Record]) -> None:
        """Enqueue every record, then wait for every delivery report within the publish timeout."""
        if not records:
            return  # a wait for zero delivery reports would never end: nothing to publish is an answer
        deadline = time.monotonic() + self.settings.publish_timeout_seconds
        producer = self._get_producer(deadline)
        deliveries = Deliveries(len(records))
        try:
            for topic, key, headers, value in records:
                producer.produce(topic, value=value, key=key, headers=headers, on_delivery=deliveries.callback)
        except (BufferError, KafkaException) as exc:
            raise PublishUnavailable(f"Kafka producer refused the record: {exc}") from exc
        if not deliveries.wait(max(0.05, deadline - time.monotonic())):
            self._discard(producer)
            raise PublishUnavailable("Kafka did not acknowledge within the publish timeout")
        if deliveries.errors:
            self._discard(producer)
            raise PublishUnavailable(f"Kafka did not acknowledge: {deliveries.errors[0]}")

    def _discard(self, producer: Producer) -> None:
        """Replace a producer that failed a publish, so the next request starts a fresh one.

        Some brokers fence the producer id after an outage (tansu: PRODUCER_FENCED on every later send, not reported
        as fatal). Apache Kafka accepts librdkafka's own epoch bump: the outage test passes there without this, but
        recovered 1.2 s after the restore instead of 0.25 s (one run each), and the purge drops records that were
        already answered 503 (the vendor sends those again)."""
        with self._lock:
            if self._producer is not producer or time.monotonic() - self._created_at < MIN_PRODUCER_AGE_SECONDS:
                return  # already replaced, or too young: do not churn producers on every refused request
            self._producer = None
            self._topics_ready = False
        threading.Thread(target=self._close_quietly, args=(producer,), daemon=True).start()

    @staticmethod
    def _close_quietly(producer: Producer) -> None:
        """Drop what it still queues (those requests were answered 503) and let it go, off the request thread."""
        try:
            producer.purge()
            producer.flush(0)
        except Exception:  # noqa: BLE001
            log.debug("closing a failed producer raised", exc_info=True)

    def ready(self) -> bool:
        try:
            producer = self._get_producer(time.monotonic() + self.settings.publish_timeout_seconds)
            topic = topic_name(self.settings.topic_prefix, ALL_TOPICS[0])
            metadata = producer.list_topics(topic, timeout=min(2.0, self.settings.publish_timeout_seconds))
            return topic in metadata.topics and metadata.topics[topic].error is None
        except Exception:  # noqa: BLE001
            return False

    def close(self) -> None:
        """Deliver what is queued (briefly) and stop the poller."""
        producer = self._producer
        self._stop.set()
        if producer is not None and self._pid == os.getpid():
            producer.flush(2)
        self._producer = None

"""The receiver's publisher when a spool is configured: Kafka's ack within `spool_after_seconds`, else the spool.

A request's records go to Kafka through a producer whose delivery timeout is the short spool deadline, so a
record it gave up on is not delivered later beside its spooled copy. If Kafka has not acknowledged by then (or the
producer already failed), the records are appended to the spool, durably, and the request is answered as accepted.
While the spool holds entries every request spools, so nothing overtakes an older record of its key. A vendor
configured `when_kafka_is_down = "retry"` waits the full publish timeout instead and gets today's 503.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily

from core.events import Envelope, topic_name
from core.kafka_clients import build
from core.settings import Settings
from receiver.publisher import KafkaKnownDown, Publisher, PublishUnavailable, Record, make_publisher
from receiver.spool import Forwarder, Spool, SpooledRecord, SpoolUnavailable

log = logging.getLogger(__name__)
SPOOLED = Counter("smshooks_spooled_records_total", "Records kept in the spool because Kafka did not ack in time.")
# the window searched for a record whose ack was lost starts this long before its first attempt (clock skew)
LANDED_SLACK_SECONDS = 5.0
FORWARDED = Counter("smshooks_spool_forwarded_records_total", "Spooled records forwarded to Kafka and acked.")


class SpoolingPublisher(Publisher):
    """Direct publish with a short deadline, the durable spool behind it, and the host's forwarder."""

    def __init__(self, settings: Settings, direct: Publisher, patient: Publisher, spool: Spool):
        self.settings, self.direct, self.patient, self.spool = settings, direct, patient, spool
        # every producer here gives up on a record within publish_timeout_seconds (+1 s for kafka-python's)
        self.forwarder = Forwarder(spool, self._forward, on_kafka=self._already_on_kafka,
                                   settle_seconds=settings.publish_timeout_seconds + 2.0)

    def publish(self, envelopes: list[Envelope], spool: bool = True) -> None:
        """Every envelope acknowledged by Kafka or durably spooled; PublishUnavailable when neither."""
        if not spool:
            return self.patient.publish(envelopes)
        if not envelopes:
            return None
        prefix = self.settings.topic_prefix
        self._deliver([(topic_name(prefix, e.topic), e.key.encode(), e.headers(), e.value()) for e in envelopes])
        return None

    def publish_raw(self, topic, key, headers, value) -> None:
        """A rejected callback: kept like an event, since its 4xx answer promises we have it."""
        self._deliver([(topic_name(self.settings.topic_prefix, topic), key.encode(), headers, value)])

    def _deliver(self, records: list[Record]) -> None:
        attempted_at = None
        if not self.spool.holds_entries():
            try:
                self.direct._publish(records)  # fails at once while Kafka is known down (one probe per 2 s)
                return
            except KafkaKnownDown:
                pass  # nothing was sent
            except PublishUnavailable as exc:
                # sent, not acknowledged: the broker may have written it and lost only the ack (a cut connection)
                attempted_at = time.time()
                log.debug("no ack within the spool deadline: %s", exc)
        try:
            self.spool.append(records, attempted_at)
        except SpoolUnavailable as exc:
            raise PublishUnavailable(f"Kafka did not ack and {exc}") from exc
        SPOOLED.inc(len(records))

    def _forward(self, records: list[Record]) -> None:
        """The forwarder's send: the patient producer, full publish timeout."""
        self.patient._send_and_wait(records)
        FORWARDED.inc(len(records))

    def _already_on_kafka(self, entries: list[SpooledRecord]) -> set[int]:
        """Of entries whose direct publish failed, those Kafka holds all the same (found by `ce_id` among the
        records its topics got since the first attempt), so the forwarder does not write them twice."""
        wanted: dict[str, dict[bytes, int]] = {}
        for entry in entries:
            topic, _, headers, _ = entry.record
            ce_id = dict(headers).get("ce_id")
            if ce_id:
                wanted.setdefault(topic, {})[ce_id] = entry.seq
        since_ms = int((min(e.attempted_at for e in entries) - LANDED_SLACK_SECONDS) * 1000)
        landed: set[int] = set()
        consumer = build(KafkaConsumer, bootstrap_servers=self.settings.kafka_bootstrap_servers.split(","),
                         enable_auto_commit=False, group_id=None, client_id="smshooks-spool-check",
                         request_timeout_ms=int(self.settings.publish_timeout_seconds * 1000) + 1000)
        try:
            for topic, ids in wanted.items():
                landed |= {ids[ce_id] for ce_id in _ids_since(consumer, topic, since_ms) if ce_id in ids}
        finally:
            consumer.close()
        return landed

    def ready(self) -> bool:
        return self.patient.ready()

    def close(self) -> None:
        self.forwarder.stopping.set()
        self.direct.close()
        self.patient.close()


def _ids_since(consumer: KafkaConsumer, topic: str, since_ms: int) -> set[bytes]:
    """The `ce_id` of every record written to `topic` since `since_ms` (a short window: around one outage)."""
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    starts = {tp: found.offset for tp, found in consumer.offsets_for_times({tp: since_ms for tp in partitions}).items()
              if found is not None}
    if not starts:
        return set()
    ends = consumer.end_offsets(list(starts))
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    pending = {tp for tp in starts if ends[tp] > starts[tp]}
    found: set[bytes] = set()
    while pending:
        for tp, batch in consumer.poll(timeout_ms=1000).items():
            found.update(dict(record.headers or []).get("ce_id", b"") for record in batch if record.offset < ends[tp])
        pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
    return found


def make_spooling_publisher(settings: Settings) -> Publisher:
    """The spooling publisher, or the plain one when spooling is off (spool_enabled = false)."""
    path = settings.effective_spool_path
    if not path:
        return make_publisher(settings)
    # the publish timeout stays the outer bound: a spool deadline beyond it is the publish timeout
    deadline = min(settings.spool_after_seconds, settings.publish_timeout_seconds)
    quick = dataclasses.replace(settings, publish_timeout_seconds=deadline)
    spool = Spool(path, settings.spool_max_bytes, settings.spool_max_age_seconds)
    return SpoolingPublisher(settings, make_publisher(quick), make_publisher(settings), spool)


def start_forwarder(app) -> None:
    """Start this worker's forwarder thread (gunicorn's post_worker_init): the one that wins the host's lock
    forwards, the others stand by; a restarted receiver forwards what a killed one left."""
    publisher = getattr(app, "extensions", {}).get("smshooks.publisher")  # gunicorn may serve another WSGI app
    if isinstance(publisher, SpoolingPublisher):
        publisher.forwarder.start()


def spool_metrics(publisher: Publisher) -> bytes:
    """The spool's depth and oldest age, read from the file at scrape time (the same for every worker)."""
    from prometheus_client import generate_latest

    if not isinstance(publisher, SpoolingPublisher):
        return b""
    registry = CollectorRegistry()
    registry.register(SpoolCollector(publisher.spool))
    return generate_latest(registry)


class SpoolCollector:
    """Prometheus collector over the spool file."""

    def __init__(self, spool: Spool):
        self.spool = spool

    def collect(self):
        depth = self.spool.depth() if self.spool.holds_entries() else 0
        age = (self.spool.oldest_age() or 0.0) if depth else 0.0
        yield GaugeMetricFamily("smshooks_spool_depth", "Records in the spool, waiting for Kafka.", value=depth)
        yield GaugeMetricFamily("smshooks_spool_oldest_age_seconds", "Age of the oldest spooled record.", value=age)

"""Replay after a fix: rejected callbacks through today's adapters, dead-lettered records back to their topics.

Both read a topic from its start to the end offsets seen when they begin (records that arrive meanwhile wait for
the next run), one poll batch at a time, so memory stays bounded over millions of records. Kafka clients are passed
in; `--dry-run` publishes nothing.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from core.events import TOPIC_CALLBACKS_REJECTED, topic_name
from core.settings import Settings
from receiver.replay import StillRejected, replay
from receiver.vendors import load_adapters

BATCH = 500
# event ids remembered to skip a second copy in one run (a vendor retried a rejected callback): bounded memory
REMEMBERED_IDS = 200_000
DLQ_HEADERS = ("dlq_reason", "dlq_original_topic", "dlq_original_partition", "dlq_original_offset",
               "dlq_consumer_group")


@dataclass
class Summary:
    """What a replay did, per outcome."""

    read: int = 0
    published: int = 0  # events (rejected) or records (DLQ) put back on Kafka, or that would be with --dry-run
    filtered: int = 0  # outside --since/--until/--vendor/--kind/--code
    duplicates: int = 0  # an event already published by this run
    still_rejected: Counter = field(default_factory=Counter)  # today's code -> count
    by_topic: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "published": self.published, "filtered": self.filtered,
                "duplicates": self.duplicates, "still_rejected": dict(self.still_rejected),
                "by_topic": dict(self.by_topic)}


@dataclass(frozen=True)
class Window:
    """Which records a replay takes: a time range and, for rejected callbacks, vendor, kind and code."""

    since: datetime | None = None
    until: datetime | None = None
    vendor: str | None = None
    kind: str | None = None
    code: str | None = None

    def takes_time(self, when: datetime | None) -> bool:
        if when is None:
            return self.since is None and self.until is None
        return (self.since is None or when >= self.since) and (self.until is None or when < self.until)

    def takes_rejected(self, value: dict[str, Any]) -> bool:
        received = value.get("received_at")
        when = datetime.fromisoformat(received.replace("Z", "+00:00")) if received else None
        return (self.takes_time(when) and self.vendor in (None, value.get("vendor"))
                and self.kind in (None, value.get("kind")) and self.code in (None, value.get("code")))


def topic_records(consumer: KafkaConsumer, topic: str, on_record=None) -> Iterator[Any]:
    """Every record of `topic` from the beginning to the end offsets at the start, in partition order."""
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not partitions:
        return
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    starts = consumer.beginning_offsets(partitions)
    end = {tp: offset for tp, offset in consumer.end_offsets(partitions).items() if offset > starts[tp]}
    while end:
        for tp, batch in consumer.poll(timeout_ms=1000, max_records=BATCH).items():
            for record in batch:
                if tp in end and record.offset < end[tp]:
                    yield record
                    if on_record:
                        on_record()
        for tp in [tp for tp in end if consumer.position(tp) >= end[tp]]:
            del end[tp]
            consumer.pause(tp)


def total(consumer: KafkaConsumer, topic: str) -> int:
    """How many records the topic holds now (for the progress bar)."""
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not partitions:
        return 0
    ends, starts = consumer.end_offsets(partitions), consumer.beginning_offsets(partitions)
    return sum(ends[tp] - starts[tp] for tp in partitions)


class Sender:
    """Sends records in batches and waits for every ack before the run reports them published."""

    def __init__(self, producer: KafkaProducer | None):
        self.producer, self.futures = producer, []

    def send(self, topic: str, key: bytes | None, headers: list[tuple[str, bytes]], value: bytes | None) -> None:
        if self.producer is None:  # --dry-run
            return
        self.futures.append(self.producer.send(topic, key=key, value=value, headers=headers))
        if len(self.futures) >= BATCH:
            self.flush()

    def flush(self) -> None:
        for future in self.futures:
            future.get(timeout=30)
        self.futures.clear()


def replay_rejected(settings: Settings, consumer: KafkaConsumer, producer: KafkaProducer | None, window: Window,
                    on_record=None) -> Summary:
    """Re-run each rejected callback in the window; publish the events that pass now (producer None: dry run)."""
    adapters, summary, sender = load_adapters(), Summary(), Sender(producer)
    seen: OrderedDict[str, None] = OrderedDict()
    for record in topic_records(consumer, topic_name(settings.topic_prefix, TOPIC_CALLBACKS_REJECTED), on_record):
        summary.read += 1
        try:
            value = json.loads(record.value)
        except (TypeError, ValueError):
            summary.still_rejected["not_a_rejected_record"] += 1
            continue
        if not window.takes_rejected(value):
            summary.filtered += 1
            continue
        try:
            envelopes = replay(value, adapters, settings)
        except StillRejected as still:
            summary.still_rejected[still.error.code] += 1
            continue
        for envelope in envelopes:
            if envelope.id in seen:
                summary.duplicates += 1
                continue
            seen[envelope.id] = None
            if len(seen) > REMEMBERED_IDS:
                seen.popitem(last=False)
            topic = topic_name(settings.topic_prefix, envelope.topic)
            sender.send(topic, envelope.key.encode(), envelope.headers(), envelope.value())
            summary.published += 1
            summary.by_topic[topic] += 1
    sender.flush()
    return summary


def replay_dlq(consumer: KafkaConsumer, producer: KafkaProducer | None, dlq_topic: str, window: Window,
               on_record=None) -> Summary:
    """Put each dead-lettered record in the window back on its original topic, headers as they were."""
    summary, sender = Summary(), Sender(producer)
    for record in topic_records(consumer, dlq_topic, on_record):
        summary.read += 1
        headers = list(record.headers or [])
        original = dict(headers).get("dlq_original_topic")
        when = datetime.fromtimestamp(record.timestamp / 1000).astimezone() if record.timestamp else None
        if not window.takes_time(when):
            summary.filtered += 1
            continue
        if not original:
            summary.still_rejected["no_original_topic"] += 1
            continue
        topic = original.decode()
        sender.send(topic, record.key, [(k, v) for k, v in headers if k not in DLQ_HEADERS], record.value)
        summary.published += 1
        summary.by_topic[topic] += 1
    sender.flush()
    return summary

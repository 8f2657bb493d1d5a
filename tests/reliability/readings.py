"""What an operator reads during a fault test: row counts from the database, offsets and lag from the broker."""

from __future__ import annotations

import sqlalchemy
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.events import topic_name
from processors.db.models import OutboxRecord, ProcessedEvent, Receipt, SentMessage
from processors.registry import PROCESSORS

SENT_MESSAGES = select(func.count()).select_from(SentMessage)
RECEIPTS = select(func.count()).select_from(Receipt)
PARKED = select(func.count()).where(Receipt.parked)
PROCESSED = select(func.count()).select_from(ProcessedEvent)  # over every processor group
UNSENT = select(func.count()).where(OutboxRecord.sent_at.is_(None))  # outbox rows not yet relayed


def counts(url: str, *queries: Select) -> tuple[int, ...]:
    """Each count query's value, read directly (one short-lived engine, never through a test's proxy)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with Session(engine) as session:
            return tuple(session.scalar(query) or 0 for query in queries)
    finally:
        engine.dispose()


def count(url: str, query: Select) -> int:
    """One count query's value (see counts)."""
    return counts(url, query)[0]


def committed_offsets(bootstrap: str, prefix: str) -> dict[tuple[str, str, int], int]:
    """Committed offsets of every processor group, by (group, topic, partition)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = {}
        for name in PROCESSORS:
            group = f"{prefix}smshooks-{name}"
            for tp, meta in admin.list_group_offsets(group).get(group, {}).items():
                offsets[(group, tp.topic, tp.partition)] = meta.offset
        return offsets
    finally:
        admin.close()


def consumer_lag(bootstrap: str, prefix: str) -> dict[str, int]:
    """Messages not yet committed, per processor group, over every partition of the topics it reads."""
    committed = committed_offsets(bootstrap, prefix)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        lag = {}
        for name, processor in PROCESSORS.items():
            group = f"{prefix}smshooks-{name}"
            partitions = [
                TopicPartition(topic_name(prefix, topic), partition)
                for topic in processor.topics
                for partition in sorted(consumer.partitions_for_topic(topic_name(prefix, topic)) or ())
            ]
            ends = consumer.end_offsets(partitions) if partitions else {}
            lag[name] = sum(end - max(committed.get((group, tp.topic, tp.partition), 0), 0) for tp, end in ends.items())
        return lag
    finally:
        consumer.close()

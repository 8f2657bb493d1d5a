"""The processors' Kafka clients, built from settings by whoever runs them and handed to each processor's loop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from kafka import KafkaConsumer, KafkaProducer

from core.kafka_clients import build
from core.settings import Settings
from core.topics import create_missing_topics

if TYPE_CHECKING:
    from processors.runtime import Processor


class KafkaClients:
    """Makes the clients a processor loop needs, again after a broker outage: topics, a consumer, a producer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def create_topics(self, names: Iterable[str]) -> None:
        """Create the (prefixed) topics the loop reads and writes that do not exist yet."""
        create_missing_topics(self.settings, names)

    def consumer(self, processor: Processor) -> KafkaConsumer:
        """A manually committing consumer in the processor's group, with the configured timings."""
        settings = self.settings
        consumer = build(
            KafkaConsumer,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=processor.group_id(settings),
            client_id=f"smshooks-{processor.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=settings.consumer_max_poll_interval_ms,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
            max_poll_records=settings.consumer_max_poll_records,
        )
        topics = processor.input_topics(settings)
        # Know the topics' partitions before joining: Apache Kafka completes a join at once, and a leader that joins
        # before its metadata arrived assigns nothing ("No partition metadata"), then needs a second rebalance, after
        # which kafka-python 3.0 sometimes sent no heartbeat and the member was expelled with its partitions idle.
        for topic in topics:
            consumer.partitions_for_topic(topic)
        consumer.subscribe(topics)
        return consumer

    def producer(self) -> KafkaProducer:
        """An idempotent, acks=all producer for outbox relay and dead letters."""
        settings = self.settings
        return build(
            KafkaProducer,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            client_id="smshooks-processors",
        )

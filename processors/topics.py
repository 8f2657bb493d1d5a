"""Create the Kafka topics a processor reads and writes, so a fresh broker works."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from smshooks.settings import Settings

log = logging.getLogger(__name__)


def dead_letter_topic(topic: str) -> str:
    """Where undecodable records of `topic` go."""
    return f"{topic}.dlq"


def ensure_topics(settings: Settings, topics: Iterable[str]) -> list[str]:
    """Create the missing topics with the configured partitions and replication; returns those created."""
    wanted = sorted(set(topics))
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id="smshooks-processors"
    )
    try:
        missing = [name for name in wanted if name not in set(admin.list_topics())]
        if not missing:
            return []
        spec = {
            "num_partitions": settings.topic_partitions,
            "replication_factor": settings.topic_replication_factor,
        }
        try:
            admin.create_topics({name: dict(spec) for name in missing}, wait_for_metadata=True)
        except TopicAlreadyExistsError:
            log.info("topics created concurrently by another instance: %s", missing)
        return missing
    finally:
        admin.close()

"""Create smshooks topics on the broker when they are missing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from core.events import topic_name
from core.kafka_clients import build
from core.settings import Settings


def ensure_topics(settings: Settings, topics: Iterable[str]) -> list[str]:
    """Create each missing topic (under the prefix) with the configured partitions; return those created."""
    return create_missing_topics(settings, [topic_name(settings.topic_prefix, t) for t in topics])


def create_missing_topics(settings: Settings, names: Iterable[str]) -> list[str]:
    """Create the named (already prefixed) topics that do not exist yet; return those created."""
    wanted = sorted(set(names))
    # built once per check and closed whatever happens (a failed bootstrap too: see core.kafka_clients)
    admin = build(
        KafkaAdminClient,
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        request_timeout_ms=int(settings.publish_timeout_seconds * 1000),
        bootstrap_timeout_ms=int(settings.publish_timeout_seconds * 1000),
        client_id="smshooks-admin",
    )
    try:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        new = [NewTopic(n, settings.topic_partitions, settings.topic_replication_factor) for n in missing]
        # another worker or instance may create one between our list and our create
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(new, wait_for_metadata=True)
        return missing
    finally:
        admin.close()

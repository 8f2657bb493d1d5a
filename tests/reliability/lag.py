"""Consumer lag of the processor groups, read from the broker as an operator would (end offset - committed)."""

from __future__ import annotations

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from processors.registry import PROCESSORS
from receiver.contract import topic_name


def consumer_lag(bootstrap: str, prefix: str) -> dict[str, int]:
    """Messages not yet committed, per processor group, over every partition of the topics it reads."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        lag = {}
        for name, processor in PROCESSORS.items():
            group = f"{prefix}smshooks-{name}"
            committed = {tp: meta.offset for tp, meta in admin.list_group_offsets(group).get(group, {}).items()}
            partitions = [
                TopicPartition(topic_name(prefix, topic), partition)
                for topic in processor.topics
                for partition in sorted(consumer.partitions_for_topic(topic_name(prefix, topic)) or ())
            ]
            ends = consumer.end_offsets(partitions) if partitions else {}
            lag[name] = sum(end - max(committed.get(tp, 0), 0) for tp, end in ends.items())
        return lag
    finally:
        consumer.close()
        admin.close()

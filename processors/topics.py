"""Topic names a processor reads and writes; creation is shared with the receiver (smshooks.topics)."""

from __future__ import annotations

from smshooks.topics import create_missing_topics as ensure_topics

__all__ = ["dead_letter_topic", "ensure_topics"]


def dead_letter_topic(topic: str) -> str:
    """Where undecodable records of `topic` go."""
    return f"{topic}.dlq"

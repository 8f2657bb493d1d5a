"""Dead-letter topic names; topics are created by core.topics."""

from __future__ import annotations


def dead_letter_topic(topic: str) -> str:
    """Where undecodable records of `topic` go."""
    return f"{topic}.dlq"

"""Kafka consumers that turn smshooks events into database state: see PROCESSORS and run_processors."""

from __future__ import annotations

from typing import Any

__all__ = ["PROCESSORS", "run_processors"]


def __getattr__(name: str) -> Any:
    """Import the registry lazily, so `processors.db` stays cheap to import (no Kafka client)."""
    if name in __all__:
        from processors import registry

        return getattr(registry, name)
    raise AttributeError(name)

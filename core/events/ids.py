"""Deterministic event ids: the same vendor callback, retried or replayed, is the same event."""

from __future__ import annotations

import uuid
from typing import Any

# Fixed namespace so that ids are stable across processes, hosts and releases.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d7f0e-5a2b-4c1e-9a57-3d5c2b9e8a10")


def deterministic_id(*parts: Any) -> str:
    """A UUIDv5 over the identifying fields, so a vendor retry produces the same event id."""
    material = "\x1f".join("" if p is None else str(p) for p in parts)
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, material))

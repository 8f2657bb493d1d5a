"""Who may read /metrics: anyone on its bind address, or only holders of `metrics_token` when one is set."""

from __future__ import annotations

import hmac


def metrics_authorized(token: str, authorization: str) -> bool:
    """True without a configured token, else for `Authorization: Bearer <token>` (constant-time compare)."""
    if not token:
        return True
    scheme, _, presented = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())

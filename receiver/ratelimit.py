"""Per-vendor and per-source rate limits (the `limits` library), answered with 429 and Retry-After."""

from __future__ import annotations

import math
import time

from limits import parse_many, storage, strategies

from receiver.errors import RateLimited
from smshooks.settings import Settings


class CallbackRateLimiter:
    """Moving-window limits keyed by vendor, and by vendor plus client address."""

    def __init__(self, settings: Settings):
        self.storage = storage.storage_from_string(settings.rate_limit_storage_uri)
        self.strategy = strategies.MovingWindowRateLimiter(self.storage) if hasattr(
            self.storage, "acquire_entry") else strategies.FixedWindowRateLimiter(self.storage)
        self.per_vendor = parse_many(settings.rate_limit_per_vendor)
        self.per_source = parse_many(settings.rate_limit_per_source)

    def check(self, vendor: str, client_ip: str) -> None:
        """Count one request; raise RateLimited with the seconds until a slot frees up."""
        checks = ((self.per_vendor, ("vendor", vendor)), (self.per_source, ("source", vendor, client_ip)))
        for limits, identity in checks:
            for item in limits:
                if not self.strategy.hit(item, *identity):
                    reset_at, _ = self.strategy.get_window_stats(item, *identity)
                    wait = max(1, math.ceil(reset_at - time.time()))
                    raise RateLimited(headers={"Retry-After": str(wait)})

"""Per-vendor and per-source rate limits (the `limits` library), answered with 429 and Retry-After."""

from __future__ import annotations

import math
import time

from limits import parse_many, storage, strategies
from limits.storage import MemoryStorage

from receiver.errors import RateLimited
from smshooks.settings import Settings


class LazyExpiryMemoryStorage(MemoryStorage):
    """limits' in-process storage, pruning expired entries inline once a second.

    The stock storage starts a Timer thread every 10 ms under load, which cost more than the limiting itself;
    counting stays exact because acquire_entry compares timestamps on its own.
    """

    STORAGE_SCHEME = ["smshooks-memory"]

    def __init__(self, uri: str | None = None, **options: str):
        super().__init__(uri, **options)
        self._next_prune = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides the parent's private scheduler
        now = time.time()
        if now >= self._next_prune:
            self._next_prune = now + 1.0
            self._MemoryStorage__expire_events()


class CallbackRateLimiter:
    """Moving-window limits keyed by vendor, and by vendor plus client address."""

    def __init__(self, settings: Settings):
        uri = settings.rate_limit_storage_uri
        self.storage = LazyExpiryMemoryStorage() if uri.startswith("memory://") else storage.storage_from_string(uri)
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

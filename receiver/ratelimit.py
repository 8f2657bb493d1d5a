"""Per-vendor and per-source rate limits (the `limits` library), answered with 429 and Retry-After."""

from __future__ import annotations

import bisect
import math
import threading
import time

from limits import parse_many, storage, strategies
from limits.storage import MemoryStorage

from receiver.errors import RateLimited
from smshooks.settings import KNOWN_VENDORS, Settings

# The bucket of every vendor segment we do not serve: they all answer 404, and keying on the raw URL segment
# would give an attacker one new key (memory) per random path.
UNKNOWN_VENDOR = "unknown"


def vendor_key(vendor: str) -> str:
    """The rate-limit identity of a vendor URL segment: the vendor when we serve it, else one shared bucket."""
    return vendor if vendor in KNOWN_VENDORS else UNKNOWN_VENDOR


class LazyExpiryMemoryStorage(MemoryStorage):
    """limits' in-process storage, pruning expired entries inline once a second.

    The stock storage starts a Timer thread every 10 ms under load, which cost more than the limiting itself;
    counting stays exact because acquire_entry compares timestamps on its own. The stock pruning also keeps an
    emptied moving window (an empty list) under its key forever, so every client address ever seen stays in
    memory; here a key is dropped once its window is empty.
    """

    STORAGE_SCHEME = ["smshooks-memory"]

    def __init__(self, uri: str | None = None, **options: str):
        super().__init__(uri, **options)
        self._next_prune = 0.0
        self._pruning = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides the parent's private scheduler
        now = time.time()
        # one pruner at a time and passes at least a second apart (see prune); the others just go on
        if now >= self._next_prune and self._pruning.acquire(blocking=False):
            try:
                if now >= self._next_prune:
                    self._next_prune = now + 1.0
                    self.prune(now)
            finally:
                self._pruning.release()

    def prune(self, now: float | None = None) -> None:
        """Drop expired entries, and the keys (and their locks) of windows and counters left empty.

        Each key is dropped under its lock, and acquire_entry re-creates it (setdefault) under a lock too. A
        request that fetched the lock just before it was dropped holds a lock no later pass knows of, so only a
        pass starting while it is still between setdefault and its insert could drop the key under it;
        passes are single-flight and a second apart, far longer than that critical section.
        """
        now = time.time() if now is None else now
        for key in list(self.events):
            with self.locks[key]:
                events = self.events.get(key)
                if events:
                    # newest first: entries from `live` on have expired
                    live = bisect.bisect_left(events, -now, key=lambda event: -event.expiry)
                    del events[live:]
                if not events:
                    self.events.pop(key, None)
                    self.locks.pop(key, None)
        for key, expiry in list(self.expirations.items()):
            if expiry <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)


class CallbackRateLimiter:
    """Moving-window limits keyed by vendor, and by vendor plus client address.

    Only vendors we serve get their own keys; every other vendor segment shares the `unknown` bucket, so random
    paths cannot grow the storage and cannot spend a real vendor's budget. That bucket is limited per source
    only: a flood of unknown paths from one address must not turn everybody else's 404 into a 429.
    """

    def __init__(self, settings: Settings):
        uri = settings.rate_limit_storage_uri
        self.storage = LazyExpiryMemoryStorage() if uri.startswith("memory://") else storage.storage_from_string(uri)
        self.strategy = strategies.MovingWindowRateLimiter(self.storage) if hasattr(
            self.storage, "acquire_entry") else strategies.FixedWindowRateLimiter(self.storage)
        self.per_vendor = parse_many(settings.rate_limit_per_vendor)
        self.per_source = parse_many(settings.rate_limit_per_source)

    def check(self, vendor: str, client_ip: str) -> None:
        """Count one request; raise RateLimited with the seconds until a slot frees up."""
        vendor = vendor_key(vendor)
        checks = [(self.per_source, ("source", vendor, client_ip))]
        if vendor != UNKNOWN_VENDOR:
            checks.insert(0, (self.per_vendor, ("vendor", vendor)))
        for limits, identity in checks:
            for item in limits:
                if not self.strategy.hit(item, *identity):
                    reset_at, _ = self.strategy.get_window_stats(item, *identity)
                    wait = max(1, math.ceil(reset_at - time.time()))
                    raise RateLimited(headers={"Retry-After": str(wait)})

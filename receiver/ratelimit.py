"""Per-vendor and per-source rate limits (the `limits` library), answered with 429 and Retry-After."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import defaultdict

from limits import parse_many, storage, strategies
from limits.storage import MovingWindowSupport, Storage

from core.settings import Settings
from receiver.errors import RateLimited
from receiver.vendors import callback_vendors

# The bucket of every vendor segment we do not serve: they all answer 404, and keying on the raw URL segment
# would give an attacker one new key (memory) per random path.
UNKNOWN_VENDOR = "unknown"
SERVED = frozenset(callback_vendors())


def vendor_key(vendor: str) -> str:
    """The rate-limit identity of a vendor URL segment: the vendor when we serve it, else one shared bucket."""
    return vendor if vendor in SERVED else UNKNOWN_VENDOR


class PrunedMovingWindowStorage(Storage, MovingWindowSupport):
    """An in-process moving-window storage on limits' public storage interface (Storage, MovingWindowSupport).

    Why not limits' MemoryStorage: it starts a Timer thread every 10 ms under load, which cost more than the
    limiting itself, and keeps an emptied window (and its key) forever, so every client address ever seen stays
    in memory. Here expired entries are pruned inline at most once a second, a key is dropped once its window is
    empty, and a window never holds more than its limit's entries. Only the moving-window strategy uses it.
    """

    STORAGE_SCHEME = ["smshooks-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        self.events: dict[str, list[float]] = {}  # key -> acquire times, newest first
        self.expiries: dict[str, float] = {}  # key -> its window length in seconds
        self.locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._next_prune = 0.0
        self._pruning = threading.Lock()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take `amount` slots of the window if it has them; the moving-window strategy's only write."""
        if amount > limit:
            return False
        self._prune_now_and_then()
        now = time.time()
        with self.locks[key]:
            window = self.events.setdefault(key, [])
            self.expiries[key] = expiry
            # the slot `amount` places back from the limit must have left the window for this hit to fit
            if len(window) > limit - amount and window[limit - amount] >= now - expiry:
                return False
            window[:0] = [now] * amount
            del window[limit:]  # older entries can never decide a later hit
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(start of the window, entries in it), as limits' strategies read it for Retry-After."""
        now = time.time()
        window = self.events.get(key) or []
        inside = bisect.bisect_left(window, -(now - expiry), key=lambda moment: -moment)
        return (window[inside - 1], inside) if inside else (now, 0)

    def _prune_now_and_then(self) -> None:
        """One pruner at a time, passes at least a second apart; the other requests just go on."""
        now = time.time()
        if now >= self._next_prune and self._pruning.acquire(blocking=False):
            try:
                if now >= self._next_prune:
                    self._next_prune = now + 1.0
                    self.prune(now)
            finally:
                self._pruning.release()

    def prune(self, now: float | None = None) -> None:
        """Drop expired entries, and the keys (and their locks) of windows left empty.

        Each key is dropped under its lock, and acquire_entry re-creates it (setdefault) under a lock too. A
        request that fetched the lock just before it was dropped holds a lock no later pass knows of, so only a
        pass starting while it is still between setdefault and its insert could drop the key under it;
        passes are single-flight and a second apart, far longer than that critical section.
        """
        now = time.time() if now is None else now
        for key in list(self.events):
            with self.locks[key]:
                window = self.events.get(key)
                if window:
                    del window[bisect.bisect_left(window, -(now - self.expiries[key]), key=lambda m: -m):]
                if not window:
                    self.events.pop(key, None)
                    self.expiries.pop(key, None)
                    self.locks.pop(key, None)

    # The counter half of the Storage interface: the fixed-window strategies are not used with this storage.
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("PrunedMovingWindowStorage serves the moving-window strategy only")

    def get(self, key: str) -> int:
        return len(self.events.get(key) or [])

    def get_expiry(self, key: str) -> float:
        window = self.events.get(key)
        return window[0] + self.expiries[key] if window else time.time()

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        count = len(self.events)
        self.events.clear()
        self.expiries.clear()
        self.locks.clear()
        return count

    def clear(self, key: str) -> None:
        with self.locks[key]:
            self.events.pop(key, None)
            self.expiries.pop(key, None)
        self.locks.pop(key, None)


class CallbackRateLimiter:
    """Moving-window limits keyed by vendor, and by vendor plus client address.

    Only vendors we serve get their own keys; every other vendor segment shares the `unknown` bucket, so random
    paths cannot grow the storage and cannot spend a real vendor's budget. That bucket is limited per source
    only: a flood of unknown paths from one address must not turn everybody else's 404 into a 429.
    """

    def __init__(self, settings: Settings):
        uri = settings.rate_limit_storage_uri
        self.storage = PrunedMovingWindowStorage() if uri.startswith("memory://") else storage.storage_from_string(uri)
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

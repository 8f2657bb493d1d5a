"""Rate-limit and metric state stays bounded whatever vendor segments and client addresses arrive
(found while chasing the hostile-input memory finding: every random vendor segment used to add keys)."""

from __future__ import annotations

import random
import string
import time

import pytest

from core.settings import load_settings
from receiver.errors import RateLimited
from receiver.ratelimit import UNKNOWN_VENDOR, CallbackRateLimiter, vendor_key
from receiver.vendors import callback_vendors


def limiter(per_vendor: str = "1000000/second", per_source: str = "1000000/second") -> CallbackRateLimiter:
    return CallbackRateLimiter(load_settings(environ={}, overrides={
        "rate_limit_per_vendor": per_vendor, "rate_limit_per_source": per_source}))


def random_segments(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(string.ascii_letters + "é☃%_-", k=rng.randint(1, 12))) for _ in range(count)]


def test_vendor_key_is_the_vendor_only_when_we_serve_it():
    assert {vendor_key(vendor) for vendor in callback_vendors()} == callback_vendors()
    assert vendor_key("fullsms") == vendor_key("") == vendor_key("SINCH") == UNKNOWN_VENDOR


def test_random_vendor_segments_do_not_grow_the_storage():
    limits = limiter()
    for vendor in random_segments(2000):
        limits.check(vendor, "203.0.113.7")
    # one per-source key for the shared unknown bucket (was 2 keys per distinct segment)
    assert len(limits.storage.events) == 1


def test_unknown_vendors_share_one_budget_per_source_and_never_spend_a_real_vendors():
    limits = limiter(per_vendor="3/minute", per_source="3/minute")
    for vendor in random_segments(3):
        limits.check(vendor, "203.0.113.7")
    with pytest.raises(RateLimited):
        limits.check("no-such-vendor", "203.0.113.7")  # one budget for every unknown segment
    for _ in range(3):  # another address still gets its 404s: no vendor-wide limit on unknown segments
        limits.check("no-such-vendor", "203.0.113.8")
    limits.check("sinch", "203.0.113.7")  # untouched by the unknown traffic


def test_emptied_windows_are_dropped_so_past_client_addresses_are_not_kept(monkeypatch):
    limits = limiter(per_vendor="1000000/second", per_source="10/second")
    for n in range(1000):
        limits.check("twilio", f"198.51.100.{n % 256}.{n}")
    assert len(limits.storage.events) == 1001
    later = time.time() + 5  # every entry of a 1-second window has expired
    monkeypatch.setattr(time, "time", lambda: later)
    limits.check("twilio", "192.0.2.1")  # the next request prunes (at most once a second)
    # the stock storage kept an empty list (and the key) for each of the 1000 past addresses
    assert sorted(limits.storage.events) == sorted([
        limits.per_vendor[0].key_for("vendor", "twilio"),
        limits.per_source[0].key_for("source", "twilio", "192.0.2.1"),
    ])
    assert len(limits.storage.locks) <= 2


def test_counting_still_holds_after_pruning(monkeypatch):
    limits = limiter(per_source="2/second")
    limits.check("vonage", "192.0.2.1")
    limits.check("vonage", "192.0.2.1")
    with pytest.raises(RateLimited):
        limits.check("vonage", "192.0.2.1")
    later = time.time() + 2
    monkeypatch.setattr(time, "time", lambda: later)
    limits.check("vonage", "192.0.2.1")
    limits.check("vonage", "192.0.2.1")
    with pytest.raises(RateLimited):
        limits.check("vonage", "192.0.2.1")


def test_random_callback_paths_through_the_app_keep_limits_and_metric_labels_bounded():
    from receiver import create_app, observability

    app = create_app({"kafka_bootstrap_servers": "127.0.0.1:9", "publish_timeout_seconds": 0.2})
    client = app.test_client()
    segments = random_segments(300, seed=2)
    for vendor, kind in zip(segments, reversed(segments), strict=True):
        assert client.post(f"/v1/callbacks/{vendor}/{kind}", data=b"{}", content_type="application/json"
                           ).status_code == 404
    assert len(app.extensions["smshooks.rate_limiter"].storage.events) <= 2
    served = set(app.extensions["smshooks.adapters"]) | {"unknown"}
    receiver_metrics = (observability.CALLBACKS, observability.CALLBACK_EVENTS, observability.VALIDATION_FAILURES,
                        observability.REJECTED, observability.REQUEST_SECONDS)
    for metric in (family for collector in receiver_metrics for family in collector.collect()):
        for sample in metric.samples:
            assert sample.labels.get("vendor", "unknown") in served, sample
            assert sample.labels.get("kind", "unknown") not in segments, sample


def test_storage_stands_on_limits_public_interface_only():
    """No override of a private (name-mangled) method of limits' MemoryStorage: an upgrade cannot silently break it."""
    from limits.storage import MemoryStorage, MovingWindowSupport, Storage

    from receiver.ratelimit import PrunedMovingWindowStorage

    assert issubclass(PrunedMovingWindowStorage, Storage | MovingWindowSupport)
    assert not issubclass(PrunedMovingWindowStorage, MemoryStorage)
    assert not [name for name in vars(PrunedMovingWindowStorage) if name.startswith("_MemoryStorage")]


def test_a_window_holds_no_more_entries_than_its_limit_and_retry_after_is_the_oldest_slot(monkeypatch):
    limits = limiter(per_source="3/minute")
    start = time.time()
    for n in range(3):
        monkeypatch.setattr(time, "time", lambda n=n: start + n)
        limits.check("sinch", "192.0.2.9")
    with pytest.raises(RateLimited) as refused:
        limits.check("sinch", "192.0.2.9")
    assert refused.value.headers["Retry-After"] == "58"  # the first slot frees 60 s after it was taken
    key = limits.per_source[0].key_for("source", "sinch", "192.0.2.9")
    assert len(limits.storage.events[key]) == 3

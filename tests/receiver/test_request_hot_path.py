"""What the per-request shortcuts replaced still happens exactly: request ids are the UUID4s `uuid` writes, and the
rate limiter's remembered keys are limits' own and stay bounded.

Fixtures: `uuid.UUID(int=..., version=4)` from the standard library is the oracle for the ids; limits' own
`RateLimitItem.key_for` for the keys.
"""

from __future__ import annotations

import random
import uuid

import pytest

from core.settings import load_settings
from receiver import fresh_request_id, ratelimit
from receiver.errors import RateLimited
from receiver.ratelimit import CallbackRateLimiter


def limiter(per_vendor: str, per_source: str = "1000000/second") -> CallbackRateLimiter:
    return CallbackRateLimiter(load_settings(environ={}, overrides={
        "rate_limit_per_vendor": per_vendor, "rate_limit_per_source": per_source}))


@pytest.mark.parametrize("seed", range(200))
def test_a_fresh_request_id_is_the_uuid4_the_stdlib_writes_for_the_same_bits(seed):
    random.seed(seed)
    fresh = fresh_request_id()
    random.seed(seed)
    assert fresh == str(uuid.UUID(int=random.getrandbits(128), version=4))


def test_remembered_keys_are_limits_own_and_still_limit():
    limits = limiter("2/second")
    limits.check("generic", "203.0.113.7")
    limits.check("generic", "203.0.113.7")
    with pytest.raises(RateLimited):
        limits.check("generic", "203.0.113.7")
    [vendor_item], [source_item] = limits.per_vendor, limits.per_source
    assert limits.keys == {(vendor_item, ("vendor", "generic")): vendor_item.key_for("vendor", "generic"),
                           (source_item, ("source", "generic", "203.0.113.7")):
                               source_item.key_for("source", "generic", "203.0.113.7")}


def test_remembered_keys_stay_bounded_whatever_addresses_arrive(monkeypatch):
    monkeypatch.setattr(ratelimit, "MAX_CACHED_KEYS", 50)
    limits = limiter("1000000/second")
    for host in range(500):
        limits.check("generic", f"198.51.100.{host % 256}-{host}")
    assert 0 < len(limits.keys) <= 50


@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ('{"a":', "}")])
def test_json_nested_to_the_limit_parses_and_one_level_more_is_refused(opening, closing):
    """32 levels (31 containers around a number) pass, 33 are refused, whether or not the brackets are counted."""
    from receiver.errors import ConstraintViolation
    from receiver.parsing import MAX_JSON_DEPTH, parse_json

    at_limit = opening * (MAX_JSON_DEPTH - 1) + "1" + closing * (MAX_JSON_DEPTH - 1)
    assert parse_json(at_limit.encode(), "application/json") is not None
    with pytest.raises(ConstraintViolation):
        parse_json((opening + at_limit + closing).encode(), "application/json")

"""The event encoder's fast path (orjson) writes only what the stdlib encoder would mean, and keeps its refusals.

Fixtures: the values orjson writes differently from `json` (NaN and Infinity as null, tuples as lists) or refuses
(integers beyond 64 bits, lone surrogates), from orjson's README; the receipt is the bench's generic one.
"""

from __future__ import annotations

import json
import math

import pytest

from core.events import EVENT_JSON, event_json

RECEIPT = {"message_id": "A1B2", "status": "delivered", "recipient": "447700900123", "parts": 1, "price": None,
           "signature_valid": True, "raw": {"format": "json", "payload": {"vendor_code": 0, "rate": 0.0475,
                                                                         "text": "Grüße ✓"}}}


def test_a_receipt_encodes_as_the_stdlib_encoder_writes_it():
    assert event_json(RECEIPT) == EVENT_JSON.encode(RECEIPT).encode()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_not_written_as_null(value):
    with pytest.raises(ValueError, match="JSON compliant"):
        event_json({"raw": {"payload": {"rate": value}}})


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30, ("a", 1), {1: "int key"}])
def test_what_orjson_refuses_or_reshapes_is_written_by_the_stdlib_encoder(value):
    data = {"raw": {"payload": {"value": value}}}
    assert event_json(data) == EVENT_JSON.encode(data).encode()
    assert json.loads(event_json(data)) == json.loads(EVENT_JSON.encode(data))


def test_a_lone_surrogate_is_refused_as_before():
    with pytest.raises(UnicodeEncodeError):
        event_json({"raw": {"payload": {"text": "\ud800"}}})

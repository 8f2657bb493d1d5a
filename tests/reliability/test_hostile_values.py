"""Hostile JSON values against the real app and broker: numbers that are not JSON once parsed never reach Kafka,
and every published value parses back as strict JSON.

Fixtures: Mobivate's documented delivery receipt (tests/receiver/test_mobivate.py) with one number field changed;
`1e999`, huge integers and `-0` are the literals an outside probe sent (issue 12).
"""

from __future__ import annotations

import json
import math

import pytest

from core.events import EVENT_JSON
from tests.receiver.test_mobivate import RECEIPT as RECEIPT_FIELDS

PATH = "/v1/callbacks/mobivate/delivery-receipts"
# Mobivate's documented receipt (as in tests/receiver/test_mobivate.py); it keeps fields it does not know in `raw`,
# so the number reaches the event
RECEIPT = json.dumps(RECEIPT_FIELDS)[:-1] + ', "vendorExtra": %s}'


def strict_json(value: bytes):
    """json.loads that refuses NaN and Infinity, as every other JSON parser does."""
    return json.loads(value, parse_constant=lambda name: pytest.fail(f"{name} in a published value"))


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1E400", "[1e999]", '{"a": 1.5e3080}'])
def test_a_number_beyond_a_double_is_refused_and_never_published(client, published, literal):
    response = client.post(PATH, data=RECEIPT % literal, content_type="application/json")
    assert response.status_code == 400, response.get_data()
    body = response.get_json()
    assert body["code"] == "syntax_invalid_json" and body["request_id"] == response.headers["X-Request-ID"]
    assert published.records("sms.delivery-receipts", expected=1, timeout=1.0) == []
    [rejected] = published.rejected()  # refused, but kept for inspection like every other 400
    assert rejected["code"] == "syntax_invalid_json"


@pytest.mark.parametrize(("literal", "expected"), [
    ("12345678901234567890123456789012345678901234567890", 12345678901234567890123456789012345678901234567890),
    ("-0", 0), ("-0.0", -0.0), ("1.7976931348623157e308", 1.7976931348623157e308), ("4.9e-324", 4.9e-324),
])
def test_huge_integers_and_negative_zero_are_published_as_valid_json(client, published, literal, expected):
    response = client.post(PATH, data=RECEIPT % literal, content_type="application/json")
    assert response.status_code == 200, response.get_data()
    [record] = published.records("sms.delivery-receipts")
    data = strict_json(record.value)
    assert data["raw"]["payload"]["vendorExtra"] == expected, data


def test_the_event_encoder_refuses_nan_and_infinity_as_a_last_guard():
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            EVENT_JSON.encode({"price": value})

"""The contract's decoder refuses, as InvalidEvent, every record that would decode and then fail in the database
(issue 12, item 2: a receipt with `received_at: null` and a sent message with `recipient: null` decoded, then
broke a NOT NULL constraint on every retry). Records are built from our own payload factories, then edited.
"""

from __future__ import annotations

import json

import pytest

from core.events import Envelope, InvalidEvent
from tests.processors.factories import at, click, inbound, receipt, sent


def data_of(payload) -> dict:
    """The JSON `data` of a payload, as a consumer reads it."""
    return json.loads(Envelope.wrap(payload).value())


def decode(payload, **edits):
    """Decode the payload's record after replacing (or, with ..., removing) some fields of its data."""
    envelope = Envelope.wrap(payload)
    data = data_of(payload)
    for name, value in edits.items():
        if value is ...:
            del data[name]
        else:
            data[name] = value
    return Envelope.decode(envelope.topic, envelope.key.encode(), envelope.headers(), json.dumps(data).encode())


RECEIPT = receipt("twilio", "SM1", "delivered", count=2, parts=1)
SENT = sent("twilio", "SM1")
INBOUND = inbound("STOP", media=({"url": "https://example.test/a.jpg"},))
CLICK = click("mobivate", "m1")


@pytest.mark.parametrize("payload", [RECEIPT, SENT, INBOUND, CLICK])
def test_a_record_of_our_own_round_trips(payload):
    assert decode(payload).payload == payload


@pytest.mark.parametrize(
    ("payload", "edits", "reason"),
    [
        (RECEIPT, {"received_at": None}, "received_at is null"),  # the receipt
        (SENT, {"recipient": None}, "recipient is null"),  # the sent message
        (SENT, {"sent_at": None}, "sent_at is null"),
        (SENT, {"parts": None}, "parts is null"),  # has a default, but null is not that default
        (SENT, {"raw": None}, "raw is null"),
        (INBOUND, {"from_": None}, "from_ is null"),
        (INBOUND, {"to": None}, "to is null"),
        (CLICK, {"url": None}, "url is null"),
        (CLICK, {"clicked_at": None}, "clicked_at is null"),
        (RECEIPT, {"vendor": ...}, "missing field 'vendor'"),
    ],
)
def test_a_required_field_that_is_null_or_missing_is_invalid(payload, edits, reason):
    with pytest.raises(InvalidEvent, match=reason):
        decode(payload, **edits)


@pytest.mark.parametrize(
    ("payload", "edits", "reason"),
    [
        (RECEIPT, {"message_id": 12345}, "message_id is not a string"),
        (RECEIPT, {"vendor_status": ["DELIVRD"]}, "vendor_status is not a string"),
        (RECEIPT, {"recipient": {"number": "1"}}, "recipient is not a string"),
        (RECEIPT, {"count": True}, "count is not an integer"),  # a bool is an int to isinstance
        (RECEIPT, {"count": "2"}, "count is not an integer"),
        (RECEIPT, {"parts": 1.5}, "parts is not an integer"),
        (RECEIPT, {"signature_valid": 1}, "signature_valid is not a boolean"),
        (RECEIPT, {"raw": []}, "raw is not an object"),
        (RECEIPT, {"received_at": 1772366400}, "received_at is not an ISO 8601 time"),
        (RECEIPT, {"received_at": "yesterday"}, "received_at: not an ISO 8601 time"),
        (RECEIPT, {"received_at": "2026-03-01T12:00:00"}, "time without a timezone"),
        (SENT, {"parts": False}, "parts is not an integer"),
        (INBOUND, {"media": "https://example.test/a.jpg"}, "media is not a list whose items are each an object"),
        (INBOUND, {"media": ["https://example.test/a.jpg"]}, "media is not a list whose items are each an object"),
        (INBOUND, {"concat": "1/2"}, "concat is not an object"),
        (INBOUND, {"text": 42}, "text is not a string"),
        (CLICK, {"recipient": 447700900001}, "recipient is not a string"),
    ],
)
def test_a_field_of_the_wrong_json_type_is_invalid(payload, edits, reason):
    with pytest.raises(InvalidEvent, match=reason):
        decode(payload, **edits)


def test_optional_fields_may_be_null_or_absent():
    decoded = decode(RECEIPT, recipient=None, count=None, signature_valid=None, occurred_at=None, raw=...)
    assert decoded.payload.recipient is None and decoded.payload.raw == {}
    assert decode(INBOUND, media=[]).payload.media == ()
    assert decode(SENT, sent_at="2026-03-01T13:00:00+01:00").payload.sent_at == at(0)

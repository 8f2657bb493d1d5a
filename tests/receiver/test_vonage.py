"""The Vonage adapter through the real app and broker: receipts and inbound messages by GET, form and JSON.

Fixtures: the example values of Vonage's SMS API specification (Nexmo/api-specification definitions/sms.yml,
DeliveryReceipt and InboundMessage); recorded callbacks of other software are in test_vonage_real.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

RECEIPTS = "/v1/callbacks/vonage/delivery-receipts"
INBOUND = "/v1/callbacks/vonage/inbound-messages"

DLR = {
    "msisdn": "447700900123", "to": "AcmeInc", "network-code": "23410", "messageId": "0A0000001234567B",
    "price": "0.03330000", "status": "delivered", "scts": "2403051015", "err-code": "0",
    "message-timestamp": "2024-03-05 10:15:42", "api-key": "abcd1234", "client-ref": "order-4411",
}
MO = {
    "msisdn": "447700900123", "to": "447700900000", "messageId": "0B00000012345678", "text": "Stop it \u00e9",
    "type": "unicode", "keyword": "STOP", "message-timestamp": "2024-03-05 11:02:10", "api-key": "abcd1234",
}


def send(client, path: str, how: str, payload: dict):
    """Call the route the way Vonage would with the given method setting."""
    if how == "get":
        return client.get(f"{path}?{urlencode(payload)}")
    if how == "form":
        return client.post(path, data=payload)
    return client.post(path, json=payload)


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_receipt_by_every_method_is_normalized_and_keyed(client, published, how):
    response = send(client, RECEIPTS, how, DLR)
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.delivery-receipts")
    headers = dict(record.headers)
    assert headers["ce_source"] == b"smshooks/vonage" and headers["ce_time"] == b"2024-03-05T10:15:42Z"
    assert record.key == b"vonage:0A0000001234567B"
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.message_id, receipt.status, receipt.vendor_status) == ("0A0000001234567B", "delivered",
                                                                            "delivered")
    assert (receipt.recipient, receipt.sender, receipt.network) == ("447700900123", "AcmeInc", "23410")
    assert (receipt.vendor_code, receipt.error_description, receipt.price) == ("0", None, "0.03330000")
    assert receipt.client_ref == "order-4411"
    assert receipt.occurred_at == datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)
    assert receipt.operator_done_at == datetime(2024, 3, 5, 10, 15, tzinfo=UTC)
    assert receipt.raw == {"format": {"get": "query"}.get(how, how), "payload": DLR, "vendor_time": "2403051015"}


@pytest.mark.parametrize(
    ("status", "error_code", "expected", "description"),
    [
        ("accepted", "0", "pending", None),
        ("buffered", "0", "pending", None),
        ("expired", "3", "expired", "absent subscriber (permanent)"),
        ("failed", "6", "failed", "anti-spam rejection"),
        ("rejected", "99", "rejected", "general error"),
        ("unknown", "1", "unknown", "unknown"),
        ("DELIVERED", "0", "delivered", None),
        ("something-new", "42", "unknown", None),
    ],
)
def test_receipt_statuses_and_error_codes(client, published, status, error_code, expected, description):
    assert client.get(f"{RECEIPTS}?{urlencode(dict(DLR, status=status, **{'err-code': error_code}))}").status_code \
        == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_code, event.payload.error_description) == (
        expected, error_code, description)


def test_duplicate_receipt_has_the_same_event_id(client):
    first = send(client, RECEIPTS, "get", DLR).get_json()["event_ids"]
    # the same receipt pushed again later by POST: only message-timestamp (push time) differs
    again = send(client, RECEIPTS, "json", dict(DLR, **{"message-timestamp": "2024-03-05 10:20:00"})).get_json()
    assert again["event_ids"] == first
    failed = send(client, RECEIPTS, "get", dict(DLR, status="failed", **{"err-code": "2"})).get_json()["event_ids"]
    assert failed != first


def test_control_parameters_stay_out_of_a_get_payload(make_client, published):
    client = make_client(vendors={"vonage": {"auth": [{"scheme": "url_token", "token": "s3cret-token"}]}})
    assert client.get(f"{RECEIPTS}?{urlencode(dict(DLR, token='s3cret-token'))}").status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert "token" not in event.payload.raw["payload"] and b"s3cret" not in published.records(
        "sms.delivery-receipts")[0].value


def test_api_key_must_be_configured_when_ids_are(make_client, published):
    client = make_client(vendors={"vonage": {"account_ids": ["abcd1234"]}})
    assert send(client, RECEIPTS, "form", DLR).status_code == 200
    other = send(client, INBOUND, "json", dict(MO, **{"api-key": "zzzz9999"}))
    assert other.status_code == 403 and other.get_json()["code"] == "unknown_account"
    assert published.rejected()[0]["code"] == "unknown_account"


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_inbound_by_every_method_is_keyed_by_sender(client, published, how):
    response = send(client, INBOUND, how, MO)
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"447700900123" and dict(record.headers)["ce_source"] == b"smshooks/vonage"
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.message_id, message.from_, message.to) == ("0B00000012345678", "447700900123", "447700900000")
    assert (message.text, message.keyword, message.concat) == ("Stop it \u00e9", "STOP", None)
    assert message.occurred_at == datetime(2024, 3, 5, 11, 2, 10, tzinfo=UTC)


def test_multipart_inbound_carries_its_position(client, published):
    part = dict(MO, concat="true", **{"concat-ref": "108", "concat-part": "2", "concat-total": "3"})
    assert send(client, INBOUND, "form", part).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert event.payload.concat == {"ref": "108", "part": 2, "total": 3}


def test_binary_inbound_keeps_data_and_udh(client, published):
    binary = {k: v for k, v in MO.items() if k not in {"text", "keyword"}}
    binary.update(type="binary", data="48656c6c6f", udh="050003CC0201")
    assert send(client, INBOUND, "get", binary).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert (event.payload.binary, event.payload.udh, event.payload.text) == ("48656c6c6f", "050003cc0201", None)


def test_duplicate_inbound_has_the_same_event_id(client):
    first = send(client, INBOUND, "get", MO).get_json()["event_ids"]
    assert send(client, INBOUND, "form", MO).get_json()["event_ids"] == first


def _without(payload: dict, *names: str) -> dict:
    return {k: v for k, v in payload.items() if k not in names}


@pytest.mark.parametrize(
    ("path", "payload", "code", "field"),
    [
        (RECEIPTS, _without(DLR, "messageId"), "syntax_constraint_violation", "messageId"),
        (RECEIPTS, _without(DLR, "status"), "syntax_constraint_violation", "status"),
        (INBOUND, _without(MO, "msisdn"), "syntax_constraint_violation", "msisdn"),
        (INBOUND, _without(MO, "text"), "syntax_constraint_violation", "text"),
        (INBOUND, dict(_without(MO, "text", "keyword"), type="binary", udh="050003CC0201"),
         "syntax_constraint_violation", "data"),
    ],
)
def test_callbacks_that_cannot_be_events_get_the_documented_400(client, published, path, payload, code, field):
    response = send(client, path, "get", payload)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()
    assert error["code"] == code and field in error["errors"]
    assert published.rejected()[0]["code"] == code


@pytest.mark.parametrize(
    ("path", "payload", "warned"),
    [
        (RECEIPTS, _without(DLR, "err-code"), []),
        (RECEIPTS, dict(DLR, msisdn="not-a-number"), []),  # kept as the address Vonage echoed
        (RECEIPTS, dict(DLR, scts="soon"), ["scts"]),
        (RECEIPTS, dict(DLR, **{"message-timestamp": "yesterday"}), ["message-timestamp"]),
        (INBOUND, dict(MO, type="mms"), ["type"]),  # a type we do not know: read as text
        (INBOUND, dict(_without(MO, "text", "keyword"), type="binary", data="00"), []),  # udh is optional
        (INBOUND, dict(MO, type="binary", data="00", udh="zz"), ["udh"]),
        (INBOUND, dict(MO, concat="true"), ["concat-ref"]),
        (INBOUND, dict(MO, concat="maybe"), ["concat"]),
        (INBOUND, dict(MO, concat="true", **{"concat-ref": "1", "concat-part": "0", "concat-total": "2"}),
         ["concat-part"]),
    ],
)
def test_descriptive_parameters_out_of_shape_are_warnings_not_400s(client, published, path, payload, warned):
    response = send(client, path, "get", payload)
    assert response.status_code == 200, response.get_json()
    topic = "sms.delivery-receipts" if path == RECEIPTS else "sms.inbound-messages"
    [event] = published.events(topic)
    assert [w["field"] for w in event.payload.parse_warnings] == warned
    assert event.payload.raw["payload"] == payload


def test_other_methods_and_content_types_are_refused(client):
    assert client.put(RECEIPTS, json=DLR).status_code == 405
    response = client.post(RECEIPTS, data=b"msisdn=1", content_type="text/plain")
    assert (response.status_code, response.get_json()["code"]) == (415, "unsupported_media_type")

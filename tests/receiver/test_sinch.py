"""The Sinch adapter through the real app and broker: delivery reports (batch and per recipient) and MO types."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

BATCH = "01HZX3K9Q2M4N6P8R0T2V4W6Y8"
RECEIPTS = "/v1/callbacks/sinch/delivery-receipts"
INBOUND = "/v1/callbacks/sinch/inbound-messages"

RECIPIENT_REPORT = {
    "type": "recipient_delivery_report_sms", "batch_id": BATCH, "recipient": "+447700900123", "code": 0,
    "status": "Delivered", "at": "2024-03-05T10:15:42.117Z", "operator_status_at": "2024-03-05T10:15:00Z",
    "client_reference": "order-4411", "applied_originator": "ACME", "number_of_message_parts": 2,
    "operator": "23410",
}
FULL_BATCH = {
    "type": "delivery_report_sms", "batch_id": BATCH, "total_message_count": 3, "client_reference": "camp-7",
    "statuses": [
        {"code": 0, "status": "Delivered", "count": 2, "recipients": ["+447700900123", "447700900124"]},
        {"code": 402, "status": "Failed", "count": 1, "recipients": ["447700900125"]},
    ],
}
SUMMARY_BATCH = {
    "type": "delivery_report_sms", "batch_id": BATCH, "total_message_count": 5,
    "statuses": [{"code": 0, "status": "Delivered", "count": 4}, {"code": 406, "status": "Expired", "count": 1}],
}
MO_TEXT = {
    "type": "mo_text", "id": "01W4FFL35P4NC4K35SMSBATCH8", "from": "+12015555555", "to": "12017777777",
    "body": "STOP \U0001f44b", "operator_id": "311071", "received_at": "2024-06-06T07:52:37.386Z",
    "sent_at": "2024-06-06T07:52:36Z", "client_reference": "ref-1",
}
MO_BINARY = dict(MO_TEXT, type="mo_binary", id="bin-1", body="SGVsbG8gV29ybGQ=", udh="050003010201")


def mo_media(**item) -> dict:
    """An mo_media callback with one attachment spelled as given."""
    return dict(MO_TEXT, type="mo_media", id="media-1",
                body={"subject": "Holiday", "message": "look", "media": [{"url": "https://media.example/a.jpg",
                                                                          "status": "Uploaded", "code": 0, **item}]})


def test_recipient_report_is_normalized_keyed_and_headed(client, published):
    response = client.post(RECEIPTS, json=RECIPIENT_REPORT)
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.delivery-receipts")
    headers = dict(record.headers)
    assert headers["ce_source"] == b"smshooks/sinch"
    assert headers["ce_type"] == b"sms.delivery_receipt.v1"
    assert headers["ce_time"] == b"2024-03-05T10:15:42.117000Z"
    assert headers["ce_id"].decode() == response.get_json()["event_ids"][0]
    assert record.key == f"sinch:{BATCH}:447700900123".encode()
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.message_id, receipt.batch_id, receipt.recipient) == (f"{BATCH}:447700900123", BATCH, "447700900123")
    assert (receipt.status, receipt.vendor_status, receipt.vendor_code) == ("delivered", "Delivered", "0")
    assert receipt.occurred_at == datetime(2024, 3, 5, 10, 15, 42, 117000, tzinfo=UTC)
    assert receipt.operator_done_at == datetime(2024, 3, 5, 10, 15, tzinfo=UTC)
    assert (receipt.client_ref, receipt.sender, receipt.parts, receipt.network) == ("order-4411", "ACME", 2, "23410")
    assert receipt.count is None and receipt.error_description is None and receipt.signature_valid is None
    assert receipt.raw == {"format": "json", "payload": RECIPIENT_REPORT, "vendor_time": "2024-03-05T10:15:42.117Z"}


def test_full_batch_fans_out_one_receipt_per_recipient(client, published):
    response = client.post(RECEIPTS, json=FULL_BATCH)
    assert response.status_code == 200 and len(set(response.get_json()["event_ids"])) == 3
    records = published.records("sms.delivery-receipts", 3)
    assert sorted(r.key.decode() for r in records) == [f"sinch:{BATCH}:44770090012{n}" for n in (3, 4, 5)]
    receipts = {e.payload.recipient: e.payload for e in published.events("sms.delivery-receipts", 3)}
    assert {r: p.status for r, p in receipts.items()} == {
        "447700900123": "delivered", "447700900124": "delivered", "447700900125": "failed"}
    failed = receipts["447700900125"]
    assert failed.vendor_code == "402" and failed.error_description == "message unroutable"
    assert failed.message_id == f"{BATCH}:447700900125" and failed.count is None and failed.client_ref == "camp-7"
    # each event keeps only its own line and recipient, not N copies of the whole batch
    assert failed.raw["payload"]["statuses"] == [{"code": 402, "status": "Failed", "count": 1,
                                                  "recipients": ["447700900125"]}]


def test_summary_batch_yields_one_counted_receipt_per_status_line(client, published):
    response = client.post(RECEIPTS, json=SUMMARY_BATCH)
    assert response.status_code == 200 and len(response.get_json()["event_ids"]) == 2
    records = published.records("sms.delivery-receipts", 2)
    assert {r.key for r in records} == {f"sinch:{BATCH}".encode()}
    receipts = sorted((e.payload for e in published.events("sms.delivery-receipts", 2)), key=lambda p: p.count)
    assert [(p.status, p.count, p.recipient, p.message_id) for p in receipts] == [
        ("expired", 1, None, BATCH), ("delivered", 4, None, BATCH)]
    assert receipts[0].error_description == "internal expiry"


def test_batch_id_is_one_spelling_in_message_id_and_key(client, published):
    assert client.post(RECEIPTS, json=dict(RECIPIENT_REPORT, batch_id=BATCH.lower())).status_code == 200
    [record] = published.records("sms.delivery-receipts")
    assert record.key == f"sinch:{BATCH}:447700900123".encode()


def test_duplicate_callback_has_the_same_event_id_and_a_new_status_a_new_one(client):
    first = client.post(RECEIPTS, json=RECIPIENT_REPORT).get_json()
    again = client.post(RECEIPTS, json=RECIPIENT_REPORT).get_json()
    later = client.post(RECEIPTS, json=dict(RECIPIENT_REPORT, status="Failed", code=404)).get_json()
    assert first["event_ids"] == again["event_ids"] and first["request_id"] != again["request_id"]
    assert later["event_ids"] != first["event_ids"]
    full_once = client.post(RECEIPTS, json=FULL_BATCH).get_json()["event_ids"]
    assert client.post(RECEIPTS, json=FULL_BATCH).get_json()["event_ids"] == full_once


@pytest.mark.parametrize("report_type", ["delivery_report_mms", "DELIVERY_REPORT_SMS"])
def test_mms_and_any_case_batch_types_are_accepted(client, published, report_type):
    assert client.post(RECEIPTS, json=dict(SUMMARY_BATCH, type=report_type)).status_code == 200
    assert len(published.events("sms.delivery-receipts", 2)) == 2


@pytest.mark.parametrize(
    ("status", "code", "expected", "description"),
    [
        ("Cancelled", 407, "failed", "cancelled"),
        ("DISPATCHED", 401, "pending", None),
        ("aborted", 412, "failed", "unprovisioned region"),
        ("Rejected", 9999, "rejected", None),  # an int Sinch never listed is kept, not refused
        ("Brand-New", 1, "unknown", None),
    ],
)
def test_recipient_mms_report_statuses_and_codes(client, published, status, code, expected, description):
    report = dict(RECIPIENT_REPORT, type="recipient_delivery_report_mms", status=status, code=code)
    assert client.post(RECEIPTS, json=report).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == (expected, status)
    assert event.payload.vendor_code == str(code) and event.payload.error_description == description


def test_new_sinch_fields_are_accepted_and_kept_raw(client, published):
    report = dict(RECIPIENT_REPORT, encoding="GSM", brand_new_field={"nested": True})
    assert client.post(RECEIPTS, json=report).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.raw["payload"]["brand_new_field"] == {"nested": True}


def test_mo_text_is_keyed_by_sender(client, published):
    response = client.post(INBOUND, json=MO_TEXT)
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"12015555555"
    assert dict(record.headers)["ce_type"] == b"sms.inbound_message.v1"
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.message_id, message.from_, message.to) == ("01W4FFL35P4NC4K35SMSBATCH8", "12015555555",
                                                                "12017777777")
    assert message.text == "STOP \U0001f44b" and message.network == "311071" and message.client_ref == "ref-1"
    assert message.occurred_at == datetime(2024, 6, 6, 7, 52, 37, 386000, tzinfo=UTC)
    assert message.sent_at == datetime(2024, 6, 6, 7, 52, 36, tzinfo=UTC)
    assert event.id == response.get_json()["event_ids"][0]


def test_mo_binary_keeps_body_and_udh(client, published):
    assert client.post(INBOUND, json=dict(MO_BINARY, udh="0500030A0201")).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert (event.payload.binary, event.payload.udh, event.payload.text) == ("SGVsbG8gV29ybGQ=", "0500030a0201", None)


@pytest.mark.parametrize("spelling", ["content_type", "contentType"])
def test_mo_media_accepts_both_content_type_spellings(client, published, spelling):
    assert client.post(INBOUND, json=mo_media(**{spelling: "image/jpeg"})).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert event.payload.media == ({"url": "https://media.example/a.jpg", "content_type": "image/jpeg",
                                    "status": "Uploaded", "code": "0"},)
    assert (event.payload.subject_line, event.payload.text) == ("Holiday", "look")


def test_duplicate_inbound_has_the_same_event_id(client):
    first = client.post(INBOUND, json=MO_TEXT).get_json()["event_ids"]
    assert client.post(INBOUND, json=MO_TEXT).get_json()["event_ids"] == first


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        (RECEIPTS, MO_TEXT),
        (RECEIPTS, dict(RECIPIENT_REPORT, type="recipient_delivery_report_rcs")),
        (INBOUND, RECIPIENT_REPORT),
        (INBOUND, dict(MO_TEXT, type="mo_unknown")),
    ],
)
def test_unknown_type_for_the_endpoint_is_403_and_recorded(client, published, path, payload):
    response = client.post(path, json=payload)
    assert response.status_code == 403 and response.get_json()["code"] == "unknown_callback_type"
    [rejected] = published.rejected()
    assert rejected["code"] == "unknown_callback_type" and rejected["status"] == 403
    assert rejected["vendor"] == "sinch" and rejected["request_id"] == response.get_json()["request_id"]


def _without(payload: dict, name: str) -> dict:
    return {k: v for k, v in payload.items() if k != name}


@pytest.mark.parametrize(
    ("path", "payload", "code", "field"),
    [
        (RECEIPTS, _without(RECIPIENT_REPORT, "type"), "syntax_constraint_violation", "type"),
        (RECEIPTS, dict(RECIPIENT_REPORT, type=7), "syntax_constraint_violation", "type"),
        (RECEIPTS, [RECIPIENT_REPORT], "syntax_constraint_violation", "_schema"),
        (RECEIPTS, _without(RECIPIENT_REPORT, "batch_id"), "syntax_constraint_violation", "batch_id"),
        (RECEIPTS, _without(RECIPIENT_REPORT, "status"), "syntax_constraint_violation", "status"),
        (RECEIPTS, _without(RECIPIENT_REPORT, "recipient"), "syntax_constraint_violation", "recipient"),
        (RECEIPTS, dict(RECIPIENT_REPORT, recipient=" "), "syntax_invalid_parameter_format", "recipient"),
        (RECEIPTS, dict(SUMMARY_BATCH, statuses=[]), "syntax_constraint_violation", "statuses"),
        (RECEIPTS, dict(SUMMARY_BATCH, statuses=[{"code": 0, "count": 4}]), "syntax_constraint_violation",
         "statuses"),
        (RECEIPTS, dict(FULL_BATCH, statuses=[{"code": 0, "status": "Delivered", "count": 1, "recipients": [""]}]),
         "syntax_invalid_parameter_format", "statuses"),
        (INBOUND, _without(MO_TEXT, "from"), "syntax_constraint_violation", "from"),
        (INBOUND, _without(MO_TEXT, "body"), "syntax_constraint_violation", "body"),
        (INBOUND, _without(MO_TEXT, "id"), "syntax_constraint_violation", "id"),
        (INBOUND, dict(MO_BINARY, body="not base64!"), "syntax_invalid_parameter_format", "body"),
        (INBOUND, dict(mo_media(content_type="image/png"), body="just text"), "syntax_constraint_violation", "body"),
    ],
)
def test_bad_payloads_get_the_documented_400(client, published, path, payload, code, field):
    response = client.post(path, json=payload)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()
    assert error["code"] == code and field in error["errors"]
    [rejected] = published.rejected()
    assert rejected["code"] == code and rejected["vendor"] == "sinch"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"type":"mo_text",', "application/json", 400, "syntax_invalid_json"),
        (b"type=mo_text", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_non_json_bodies_are_refused(client, published, body, content_type, status, code):
    response = client.post(INBOUND, data=body, content_type=content_type)
    assert (response.status_code, response.get_json()["code"]) == (status, code)
    assert published.rejected()[0]["body"] == body


def test_get_is_not_allowed(client):
    response = client.get(RECEIPTS)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("path", "payload", "fields"),
    [
        (RECEIPTS, _without(RECIPIENT_REPORT, "at"), []),
        (RECEIPTS, dict(RECIPIENT_REPORT, at="yesterday"), ["at"]),
        (RECEIPTS, dict(RECIPIENT_REPORT, code=1.5, operator_status_at="soon"), ["code", "operator_status_at"]),
        (RECEIPTS, dict(RECIPIENT_REPORT, number_of_message_parts="two", operator="x" * 80),
         ["number_of_message_parts", "operator"]),
        (RECEIPTS, dict(SUMMARY_BATCH, total_message_count="5x"), ["total_message_count"]),
        (INBOUND, dict(MO_TEXT, received_at="now", operator_id=311071), ["received_at", "operator_id"]),
        (INBOUND, dict(MO_BINARY, udh="05000"), ["udh"]),
        (INBOUND, mo_media(content_type="image/png", url="ftp://x"), ["url"]),
    ],
)
def test_described_fields_that_do_not_parse_are_warnings(client, published, path, payload, fields):
    response = client.post(path, json=payload)
    assert response.status_code == 200, response.get_json()
    topic = "sms.delivery-receipts" if path == RECEIPTS else "sms.inbound-messages"
    events = published.events(topic, len(response.get_json()["event_ids"]))
    assert sorted(w["field"] for w in events[0].payload.parse_warnings) == sorted(fields)


def test_a_long_text_and_an_alphanumeric_sender_are_an_inbound_message(client, published):
    assert client.post(INBOUND, json=dict(MO_TEXT, **{"from": "InfoSMS", "body": "x" * 2500})).status_code == 200
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"InfoSMS"
    [event] = published.events("sms.inbound-messages")
    assert event.payload.from_ == "InfoSMS" and len(event.payload.text) == 2500


def test_an_mo_binary_without_udh_keeps_its_body(client, published):
    assert client.post(INBOUND, json=_without(MO_BINARY, "udh")).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert (event.payload.binary, event.payload.udh) == ("SGVsbG8gV29ybGQ=", None)


def test_a_full_batch_with_an_unreadable_recipient_or_line_publishes_the_rest(client, published):
    report = dict(FULL_BATCH, statuses=[
        {"code": 0, "status": "Delivered", "count": 3,
         "recipients": ["+447700900123", {"msisdn": "x"}, "447700900124"]},
        {"code": 402, "count": 1, "recipients": ["447700900125"]},  # no status: nothing to report
    ])
    response = client.post(RECEIPTS, json=report)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert len(body["event_ids"]) == 2 and [r["entry"] for r in body["rejected_entries"]] == [1, 3]
    events = published.events("sms.delivery-receipts", 2)
    assert sorted(e.payload.recipient for e in events) == ["447700900123", "447700900124"]
    bad_recipient, bad_line = published.rejected(2)
    assert (bad_recipient["entry"], bad_recipient["status"]) == (1, 400)
    # the replay body is the batch cut down to that line and recipient
    assert json.loads(bad_recipient["body"])["statuses"] == [
        {"code": 0, "status": "Delivered", "count": 3, "recipients": [{"msisdn": "x"}]}]
    assert bad_line["entry"] == 3 and "status" in bad_line["errors"]["statuses"]["0"]
    assert json.loads(bad_line["body"])["batch_id"] == BATCH

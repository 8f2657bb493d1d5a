"""The Twilio adapter through the real app and broker: status callbacks and incoming messages (form POSTs)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

RECEIPTS = "/v1/callbacks/twilio/delivery-receipts"
INBOUND = "/v1/callbacks/twilio/inbound-messages"
ACCOUNT = "AC00000000000000000000000000000001"
SID = "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0"

STATUS = {
    "MessageSid": SID, "SmsSid": SID, "MessageStatus": "delivered", "SmsStatus": "delivered",
    "AccountSid": ACCOUNT, "From": "+15005550006", "To": "+44 7700 900123", "ApiVersion": "2010-04-01",
    "RawDlrDoneDate": "2403051015", "MessagingServiceSid": "MG00000000000000000000000000000001",
}
INCOMING = {
    "MessageSid": "SMa1b2c3d4e5f60718293a4b5c6d7e8f90", "AccountSid": ACCOUNT, "From": "+447700900123",
    "To": "+15005550006", "Body": "STOP please \u00e9\U0001f44b", "NumMedia": "0", "NumSegments": "1",
    "FromCountry": "GB",
}


def test_status_callback_is_normalized_keyed_and_headed(client, published):
    response = client.post(RECEIPTS, data=STATUS)
    assert response.status_code == 200 and response.get_json()["status"] == "accepted"
    [record] = published.records("sms.delivery-receipts")
    headers = dict(record.headers)
    assert headers["ce_source"] == b"smshooks/twilio" and headers["ce_type"] == b"sms.delivery_receipt.v1"
    assert headers["ce_id"].decode() == response.get_json()["event_ids"][0]
    assert record.key == f"twilio:{SID}".encode()
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.message_id, receipt.status, receipt.vendor_status) == (SID, "delivered", "delivered")
    assert (receipt.recipient, receipt.sender, receipt.vendor_code) == ("447700900123", "+15005550006", None)
    assert receipt.operator_done_at == datetime(2024, 3, 5, 10, 15, tzinfo=UTC)
    assert receipt.raw == {"format": "form", "payload": STATUS, "vendor_time": "2403051015"}


@pytest.mark.parametrize(
    ("status", "error_code", "expected", "description"),
    [
        ("undelivered", "30003", "failed", "unreachable destination handset"),
        ("failed", "30999", "failed", None),
        ("canceled", "", "failed", "canceled"),
        ("sent", "", "pending", None),
        ("read", "", "delivered", None),
        ("partially_delivered", "", "unknown", None),
        ("Queued", "", "pending", None),
        ("brand_new_status", "", "unknown", None),
    ],
)
def test_status_mapping_and_error_codes(client, published, status, error_code, expected, description):
    callback = dict(STATUS, MessageStatus=status, ErrorCode=error_code)
    del callback["RawDlrDoneDate"]
    assert client.post(RECEIPTS, data=callback).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == (expected, status)
    assert event.payload.vendor_code == (error_code or None) and event.payload.error_description == description


def test_duplicate_status_callback_has_the_same_event_id(client):
    first = client.post(RECEIPTS, data=STATUS).get_json()
    again = client.post(RECEIPTS, data=STATUS).get_json()
    sent = client.post(RECEIPTS, data=dict(STATUS, MessageStatus="sent")).get_json()
    assert first["event_ids"] == again["event_ids"] and sent["event_ids"] != first["event_ids"]


def test_whatsapp_channel_prefix_is_stripped_from_the_recipient(client, published):
    assert client.post(RECEIPTS, data=dict(STATUS, To="whatsapp:+447700900123")).status_code == 200
    assert published.events("sms.delivery-receipts")[0].payload.recipient == "447700900123"


@pytest.mark.parametrize("status", ["received", "Receiving"])
def test_inbound_statuses_on_the_status_endpoint_are_403_and_recorded(client, published, status):
    response = client.post(RECEIPTS, data=dict(STATUS, MessageStatus=status))
    assert response.status_code == 403 and response.get_json()["code"] == "unknown_callback_type"
    [rejected] = published.rejected()
    assert rejected["code"] == "unknown_callback_type" and rejected["vendor"] == "twilio"


def test_account_sid_must_be_configured_when_ids_are(make_client, published):
    client = make_client(vendors={"twilio": {"account_ids": [ACCOUNT]}})
    assert client.post(RECEIPTS, data=STATUS).status_code == 200
    other = client.post(RECEIPTS, data=dict(STATUS, AccountSid="AC99999999999999999999999999999999"))
    assert other.status_code == 403 and other.get_json()["code"] == "unknown_account"
    missing = {k: v for k, v in INCOMING.items() if k != "AccountSid"}
    assert client.post(INBOUND, data=missing).status_code == 403
    assert [r["code"] for r in published.rejected(2)] == ["unknown_account", "unknown_account"]


def test_inbound_message_is_acked_with_empty_twiml_and_keyed_by_sender(client, published):
    response = client.post(INBOUND, data=INCOMING)
    assert response.status_code == 200
    assert response.mimetype == "text/xml" and response.get_data(as_text=True).endswith("<Response/>")
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"447700900123" and dict(record.headers)["ce_source"] == b"smshooks/twilio"
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.message_id, message.from_, message.to) == (INCOMING["MessageSid"], "447700900123", "15005550006")
    assert message.text == INCOMING["Body"] and message.media == () and message.occurred_at is None
    assert message.raw["payload"]["FromCountry"] == "GB"


def test_inbound_media_pairs_become_media(client, published):
    mms = dict(INCOMING, Body="", NumMedia="2", MediaUrl0="https://api.twilio.com/m/0",
               MediaContentType0="image/jpeg", MediaUrl1="https://api.twilio.com/m/1", MediaContentType1="video/mp4")
    assert client.post(INBOUND, data=mms).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert event.payload.media == ({"url": "https://api.twilio.com/m/0", "content_type": "image/jpeg"},
                                   {"url": "https://api.twilio.com/m/1", "content_type": "video/mp4"})
    assert event.payload.text == ""


def test_duplicate_inbound_has_the_same_event_id(client, published):
    first = client.post(INBOUND, data=INCOMING)
    second = client.post(INBOUND, data=INCOMING)
    assert first.status_code == second.status_code == 200
    events = published.events("sms.inbound-messages", 2)
    assert len(events) == 2 and events[0].id == events[1].id


def _without(payload: dict, *names: str) -> dict:
    return {k: v for k, v in payload.items() if k not in names}


@pytest.mark.parametrize(
    ("path", "payload", "code", "field"),
    [
        (RECEIPTS, _without(STATUS, "MessageSid", "SmsSid"), "syntax_constraint_violation", "MessageSid"),
        (RECEIPTS, _without(STATUS, "MessageStatus", "SmsStatus"), "syntax_constraint_violation", "MessageStatus"),
        (INBOUND, _without(INCOMING, "From"), "syntax_constraint_violation", "From"),
        (INBOUND, dict(INCOMING, From=""), "syntax_invalid_parameter_format", "From"),
        (INBOUND, _without(INCOMING, "Body"), "syntax_constraint_violation", "Body"),
    ],
)
def test_callbacks_that_cannot_be_events_get_the_documented_400(client, published, path, payload, code, field):
    response = client.post(path, data=payload)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()
    assert error["code"] == code and field in error["errors"]
    assert published.rejected()[0]["code"] == code


@pytest.mark.parametrize(
    ("path", "payload", "warned"),
    [
        (RECEIPTS, dict(STATUS, RawDlrDoneDate="2024-03-05"), ["RawDlrDoneDate"]),
        (RECEIPTS, dict(STATUS, RawDlrDoneDate="2413051015"), ["RawDlrDoneDate"]),
        (RECEIPTS, _without(STATUS, "MessageSid", "MessageStatus"), []),  # the SMS-era SmsSid/SmsStatus stand in
        (INBOUND, dict(INCOMING, NumMedia="two"), ["NumMedia"]),
        (INBOUND, dict(INCOMING, NumMedia="11"), ["NumMedia"]),
        (INBOUND, dict(INCOMING, NumMedia="1"), []),  # no MediaUrl0: no media, the Body stands
        (INBOUND, dict(INCOMING, Body="x" * 4096), []),  # WhatsApp's longest message
        (INBOUND, dict(INCOMING, NumMedia="1", MediaUrl0="not a url", MediaContentType0="image/png"), []),
    ],
)
def test_descriptive_parameters_out_of_shape_are_accepted(client, published, path, payload, warned):
    response = client.post(path, data=payload)
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts" if path == RECEIPTS else "sms.inbound-messages")
    assert [w["field"] for w in event.payload.parse_warnings] == warned
    assert event.payload.raw["payload"] == payload


def test_repeated_parameter_and_json_bodies_are_refused(client, published):
    repeated = client.post(RECEIPTS, data="MessageSid=a&MessageSid=b&MessageStatus=sent",
                           content_type="application/x-www-form-urlencoded")
    assert (repeated.status_code, repeated.get_json()["code"]) == (400, "syntax_constraint_violation")
    as_json = client.post(RECEIPTS, json=STATUS)
    assert (as_json.status_code, as_json.get_json()["code"]) == (415, "unsupported_media_type")
    assert [r["status"] for r in published.rejected(2)] == [400, 415]

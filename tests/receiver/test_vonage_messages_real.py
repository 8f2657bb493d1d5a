"""Vonage Messages API (v1) callbacks on the vonage routes, through the real app and broker.

Fixtures follow the webhook examples of Vonage's Messages API reference (developer.vonage.com, "Messages API Status
Callbacks": SMS multipart status `{"message_uuid", "to", "from", "timestamp": "2023-05-01T14:00:00.000Z", "status":
"submitted", "usage": {"currency": "EUR", "price": ...}, "channel": "sms", ...}`, rejected statuses with an `error`
object, WhatsApp `read`; "Inbound Message" webhook: `channel`, `message_type`, `text`, `sms.keyword`, media objects
with a `url`). Their statuses come from the spec's MessageStatus enum (Nexmo/api-specification
definitions/messages-olympus.yml: submitted, delivered, read, rejected, undeliverable).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

RECEIPTS = "/v1/callbacks/vonage/delivery-receipts"
INBOUND = "/v1/callbacks/vonage/inbound-messages"
UUID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
SMS_STATUS = {
    "message_uuid": UUID, "to": "447700900000", "from": "447700900001", "timestamp": "2023-05-01T14:00:00.000Z",
    "status": "delivered", "usage": {"currency": "EUR", "price": "0.0333"}, "client_ref": "order-4411",
    "channel": "sms", "destination": {"network_code": "23410"}, "sms": {"count_total": "2"},
}
SMS_INBOUND = {
    "channel": "sms", "message_uuid": UUID, "to": "447700900000", "from": "447700900001",
    "timestamp": "2023-05-01T14:00:00.000Z", "text": "STOP", "sms": {"num_messages": "1", "keyword": "STOP"},
    "usage": {"currency": "EUR", "price": "0.0333"}, "message_type": "text", "context_status": "none",
}


def test_sms_status_is_a_receipt(client, published):
    response = client.post(RECEIPTS, json=SMS_STATUS)
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.message_id, receipt.status, receipt.recipient, receipt.sender) == (UUID, "delivered",
                                                                                       "447700900000", "447700900001")
    assert (receipt.price, receipt.currency, receipt.network, receipt.client_ref) == ("0.0333", "EUR", "23410",
                                                                                      "order-4411")
    assert receipt.occurred_at == datetime(2023, 5, 1, 14, tzinfo=UTC) and receipt.parse_warnings == ()


@pytest.mark.parametrize(
    ("word", "status"),
    [("submitted", "pending"), ("read", "delivered"), ("rejected", "rejected"), ("undeliverable", "failed"),
     ("something_new", "unknown")],
)
def test_every_status_word(client, published, word, status):
    assert client.post(RECEIPTS, json=dict(SMS_STATUS, status=word)).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == (status, word)


def test_rejected_status_keeps_the_error(client, published):
    error = {"type": "https://developer.vonage.com/api-errors/messages-olympus#1300", "title": 1300,
             "detail": "Not part of the provider network", "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf"}
    assert client.post(RECEIPTS, json=dict(SMS_STATUS, status="rejected", error=error)).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.vendor_code, event.payload.error_description) == ("1300",
                                                                            "Not part of the provider network")


def test_sms_inbound_is_an_inbound_message(client, published):
    assert client.post(INBOUND, json=SMS_INBOUND).status_code == 200
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"447700900001"
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.text, message.keyword, message.to) == ("STOP", "STOP", "447700900000")


def test_whatsapp_image_keeps_its_channel_and_media(client, published):
    image = {"channel": "whatsapp", "message_uuid": UUID, "to": "447700900000", "from": "447700900001",
             "timestamp": "2023-05-01T14:00:00Z", "message_type": "image",
             "image": {"url": "https://api-eu.nexmo.com/v3/media/1234", "caption": "look"}}
    assert client.post(INBOUND, json=image).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert event.payload.from_ == "whatsapp:447700900001" and event.payload.text is None
    assert event.payload.media == ({"url": "https://api-eu.nexmo.com/v3/media/1234", "content_type": "image"},)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [(RECEIPTS, {k: v for k, v in SMS_STATUS.items() if k != "status"}, "status"),
     (INBOUND, {k: v for k, v in SMS_INBOUND.items() if k != "text"}, "text"),
     (INBOUND, {k: v for k, v in SMS_INBOUND.items() if k != "from"}, "from")],
)
def test_what_cannot_be_an_event_is_400(client, published, path, body, field):
    response = client.post(path, json=body)
    assert response.status_code == 400 and field in response.get_json()["errors"]
    assert published.rejected()[0]["code"] == "syntax_constraint_violation"

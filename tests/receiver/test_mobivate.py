"""Mobivate callbacks through the real app and broker: receipts, inbound messages, clicks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

RECEIPTS = "/v1/callbacks/mobivate/delivery-receipts"
INBOUND = "/v1/callbacks/mobivate/inbound-messages"
CLICKS = "/v1/callbacks/mobivate/link-clicks"

RECEIPT = {"deliveryMessageId": "A1B2C3D4E5F60718293A4B5C6D7E8F90", "batchId": "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
           "clientReference": "order-4411", "created": "2024-03-05T10:15:42.000+00:00",
           "status": "DELIVERED", "statusCode": 1, "parts": 1, "hlr": None}
INBOUND_MESSAGE = {"id": "7C9E11AA0B2233CC44DD55EE66FF7788", "originator": "447700900123", "recipient": "60777",
                   "body": "STOP", "created": "2024-03-05T11:02:10+0000",
                   "inReplyTo": "A1B2C3D4E5F60718293A4B5C6D7E8F90",
                   "logicalMessageId": "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
                   "ownerUserId": "55AA55AA55AA55AA55AA55AA55AA55AA"}
CLICK = {"mobile": "447700900123", "messageId": "A1B2C3D4E5F60718293A4B5C6D7E8F90",
         "batchId": "0F1E2D3C4B5A69788796A5B4C3D2E1F0", "clientRef": "order-4411", "browser": "Chrome",
         "country": "United Kingdom", "ipAddress": "203.0.113.7", "iso2l": "UK", "os": "Android",
         "url": "https://shop.example.com/offer?id=9"}


def test_receipt_is_published_normalized_with_headers_and_key(client, published):
    response = client.post(RECEIPTS, json=dict(RECEIPT, newVendorField="kept"))
    assert response.status_code == 200, response.get_json()
    [event_id] = response.get_json()["event_ids"]
    [record] = published.records("sms.delivery-receipts")
    headers = dict(record.headers)
    assert headers["ce_type"] == b"sms.delivery_receipt.v1"
    assert headers["ce_source"] == b"smshooks/mobivate"
    assert headers["ce_id"].decode() == event_id
    assert headers["ce_time"] == b"2024-03-05T10:15:42Z"
    assert record.key == b"mobivate:a1b2c3d4e5f60718293a4b5c6d7e8f90"
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert receipt.vendor == "mobivate" and receipt.message_id == "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert (receipt.status, receipt.vendor_status, receipt.vendor_code) == ("delivered", "DELIVERED", "1")
    assert receipt.is_final
    assert receipt.occurred_at == datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)
    assert (receipt.batch_id, receipt.client_ref, receipt.parts) == (
        "0F1E2D3C4B5A69788796A5B4C3D2E1F0", "order-4411", 1)
    assert receipt.raw["payload"]["newVendorField"] == "kept"
    assert receipt.raw["vendor_time"] == "2024-03-05T10:15:42.000+00:00"


def test_accepted_receipt_is_pending_and_null_client_reference_is_allowed(client, published):
    response = client.post(RECEIPTS, json=dict(RECEIPT, status="ACCEPTED", statusCode=2, clientReference=None))
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "pending" and not event.payload.is_final
    assert event.payload.client_ref is None


def test_duplicate_receipt_has_the_same_event_id_and_a_new_status_a_new_one(client):
    first = client.post(RECEIPTS, json=RECEIPT).get_json()["event_ids"]
    again = client.post(RECEIPTS, json=RECEIPT).get_json()["event_ids"]
    other = client.post(RECEIPTS, json=dict(RECEIPT, status="ACCEPTED", statusCode=2)).get_json()["event_ids"]
    assert first == again
    assert other != first


def test_inbound_message_is_keyed_by_subscriber_and_parses_offset_without_colon(client, published):
    response = client.post(INBOUND, json=INBOUND_MESSAGE)
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"447700900123"
    headers = dict(record.headers)
    assert headers["ce_type"] == b"sms.inbound_message.v1" and headers["ce_source"] == b"smshooks/mobivate"
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.from_, message.to, message.text) == ("447700900123", "60777", "STOP")
    assert message.occurred_at == datetime(2024, 3, 5, 11, 2, 10, tzinfo=UTC)
    assert message.in_reply_to == "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert message.batch_id == "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
    assert message.raw["payload"]["ownerUserId"] == "55AA55AA55AA55AA55AA55AA55AA55AA"


def test_duplicate_inbound_message_has_the_same_event_id(client):
    first = client.post(INBOUND, json=INBOUND_MESSAGE).get_json()["event_ids"]
    assert client.post(INBOUND, json=INBOUND_MESSAGE).get_json()["event_ids"] == first


def test_click_maps_uk_to_gb_and_uses_receive_time(client, published):
    before = datetime.now(UTC)
    response = client.post(CLICKS, json=CLICK)
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.link-clicks")
    assert record.key == b"mobivate:a1b2c3d4e5f60718293a4b5c6d7e8f90"
    headers = dict(record.headers)
    assert headers["ce_type"] == b"sms.link_click.v1" and headers["ce_source"] == b"smshooks/mobivate"
    [event] = published.events("sms.link-clicks")
    click = event.payload
    assert click.country_iso2 == "GB" and click.raw["payload"]["iso2l"] == "UK"
    assert (click.recipient, click.url, click.ip_address) == (
        "447700900123", "https://shop.example.com/offer?id=9", "203.0.113.7")
    assert (click.browser, click.os, click.country, click.client_ref) == (
        "Chrome", "Android", "United Kingdom", "order-4411")
    assert click.clicked_at == click.received_at and click.clicked_at >= before


def test_duplicate_click_has_the_same_event_id(client):
    first = client.post(CLICKS, json=CLICK).get_json()["event_ids"]
    assert client.post(CLICKS, json=CLICK).get_json()["event_ids"] == first


def _without(payload: dict, name: str) -> dict:
    return {k: v for k, v in payload.items() if k != name}


@pytest.mark.parametrize(
    ("path", "payload", "code", "field"),
    [
        (RECEIPTS, _without(RECEIPT, "deliveryMessageId"), "syntax_constraint_violation", "deliveryMessageId"),
        (RECEIPTS, _without(RECEIPT, "status"), "syntax_constraint_violation", "status"),
        (INBOUND, _without(INBOUND_MESSAGE, "originator"), "syntax_constraint_violation", "originator"),
        (INBOUND, dict(INBOUND_MESSAGE, originator=" "), "syntax_invalid_parameter_format", "originator"),
        (INBOUND, _without(INBOUND_MESSAGE, "body"), "syntax_constraint_violation", "body"),
        (INBOUND, _without(INBOUND_MESSAGE, "id"), "syntax_constraint_violation", "id"),
        (CLICKS, _without(CLICK, "url"), "syntax_constraint_violation", "url"),
        (CLICKS, _without(CLICK, "messageId"), "syntax_constraint_violation", "messageId"),
        (CLICKS, _without(CLICK, "mobile"), "syntax_constraint_violation", "mobile"),
    ],
)
def test_invalid_payload_is_400_and_recorded_as_rejected(client, published, path, payload, code, field):
    response = client.post(path, json=payload)
    assert response.status_code == 400
    error = response.get_json()
    assert error["code"] == code and field in error["errors"]
    [rejected] = published.rejected()
    assert rejected["vendor"] == "mobivate" and rejected["code"] == code
    assert rejected["request_id"] == error["request_id"]


def test_list_body_is_refused(client):
    response = client.post(RECEIPTS, json=[RECEIPT])
    assert response.status_code == 400 and response.get_json()["code"] == "syntax_constraint_violation"


@pytest.mark.parametrize("path", [RECEIPTS, INBOUND, CLICKS])
def test_form_body_is_415_and_get_is_405(client, published, path):
    response = client.post(path, data={"status": "DELIVERED"})
    assert response.status_code == 415 and response.get_json()["code"] == "unsupported_media_type"
    [rejected] = published.rejected()
    assert rejected["status"] == 415
    response = client.get(path)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


def test_dashed_uuid_ids_lose_their_dashes(client, published):
    response = client.post(RECEIPTS, json=dict(RECEIPT, deliveryMessageId="EF5796CE-E326-4A09-9033-6B457039B1BA"))
    assert response.status_code == 200
    [record] = published.records("sms.delivery-receipts")
    assert record.key == b"mobivate:ef5796cee3264a0990336b457039b1ba"


@pytest.mark.parametrize(
    ("path", "topic", "payload", "fields"),
    [
        (RECEIPTS, "sms.delivery-receipts", _without(RECEIPT, "statusCode"), []),
        (RECEIPTS, "sms.delivery-receipts", dict(RECEIPT, statusCode="one", parts=0), ["statusCode", "parts"]),
        (RECEIPTS, "sms.delivery-receipts", dict(RECEIPT, created="05/03/2024 10:15"), ["created"]),
        (RECEIPTS, "sms.delivery-receipts", _without(RECEIPT, "created"), []),
        (INBOUND, "sms.inbound-messages", dict(INBOUND_MESSAGE, created="yesterday"), ["created"]),
        (INBOUND, "sms.inbound-messages", dict(INBOUND_MESSAGE, inReplyTo=7), ["inReplyTo"]),
        (CLICKS, "sms.link-clicks", dict(CLICK, ipAddress="unknown", iso2l="GBR"), ["ipAddress", "iso2l"]),
    ],
)
def test_described_fields_that_do_not_parse_are_warnings(client, published, path, topic, payload, fields):
    response = client.post(path, json=payload)
    assert response.status_code == 200, response.get_json()
    [event] = published.events(topic)
    assert sorted(w["field"] for w in event.payload.parse_warnings) == sorted(fields)


def test_an_unlisted_status_with_an_unlisted_code_is_unknown(client, published):
    assert client.post(RECEIPTS, json=dict(RECEIPT, status="BUFFERED", statusCode=77)).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status, event.payload.vendor_code) == (
        "unknown", "BUFFERED", "77")


def test_an_alphanumeric_originator_and_a_url_without_scheme_are_accepted(client, published):
    assert client.post(INBOUND, json=dict(INBOUND_MESSAGE, originator="Acme")).status_code == 200
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"Acme"
    assert client.post(CLICKS, json=dict(CLICK, url="shop.example.com/offer")).status_code == 200
    [event] = published.events("sms.link-clicks")
    assert event.payload.url == "shop.example.com/offer"

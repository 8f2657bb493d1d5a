"""Vonage SMS API callbacks as Vonage and other integrations record them, through the real app and broker.

Fixtures: nyaruka/courier handlers/nexmo/handler_test.go (minimal receipts `to=2020&messageId=external1&status=...
&err-code=...` and inbound `to=2020&msisdn=...&text=Join&messageId=external1` by GET and POST, the bare "URL check"
requests, `msisdn=MTN`); Vonage's SMS API reference (Nexmo/api-specification definitions/sms.yml: scts `2001011400`
is 2020-01-01 14:00, unix `timestamp` `1582650446`; developer.vonage.com's current reference writes message-timestamp
as `2020-01-01 12:00:00 +0000`); a recorded Nexmo inbound form POST (gist leggetter/2ea764759efec4d74f27a9eae5ad9e5e,
User-Agent Nexmo/MessagingHUB/v1.0); the inbound-SMS guide's concatenated parts (concat, concat-ref, concat-total,
concat-part).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

RECEIPTS = "/v1/callbacks/vonage/delivery-receipts"
INBOUND = "/v1/callbacks/vonage/inbound-messages"
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [("to=2020&messageId=external1&status=delivered&err-code=0", "delivered", "0"),
     ("to=2020&messageId=external1&status=expired&err-code=0", "expired", "0"),
     ("to=2020&messageId=external1&status=failed&err-code=6", "failed", "6"),
     ("to=2020&messageId=external1&status=accepted", "pending", None),
     ("to=2020&messageId=external1&status=buffered", "pending", None),
     ("to=2020&messageId=external1&status=unexpected", "unknown", None)],  # a new word is unknown, never a 400
)
def test_courier_minimal_receipts(client, published, query, status, code):
    response = client.get(f"{RECEIPTS}?{query}")
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.message_id, receipt.status, receipt.vendor_code, receipt.sender) == ("external1", status, code,
                                                                                          "2020")
    assert receipt.recipient is None and receipt.parse_warnings == ()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_courier_minimal_inbound(client, published, method):
    body = "to=2020&msisdn=2349067554729&text=Join&messageId=external1"
    response = (client.get(f"{INBOUND}?{body}") if method == "GET"
                else client.post(INBOUND, data=body, content_type=FORM))
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.from_, message.to, message.text, message.occurred_at) == ("2349067554729", "2020", "Join", None)


def test_alphanumeric_msisdn_is_a_sender_not_a_400(client, published):
    assert client.get(f"{INBOUND}?to=2020&msisdn=MTN&text=Join&messageId=external1").status_code == 200
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"MTN"


@pytest.mark.parametrize(("method", "path"), [("GET", RECEIPTS), ("POST", INBOUND)])
def test_url_check_without_parameters_is_answered_without_an_event(client, published, method, path):
    response = client.get(path) if method == "GET" else client.post(path, data="", content_type=FORM)
    assert response.status_code == 200 and response.get_json()["event_ids"] == []


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [("2020-01-01 12:00:00 +0000", datetime(2020, 1, 1, 12, tzinfo=UTC)),  # the current API reference
     ("2020-01-01 12:00:00", datetime(2020, 1, 1, 12, tzinfo=UTC)),  # the older one
     ("2020-01-01T12:00:00Z", datetime(2020, 1, 1, 12, tzinfo=UTC)),
     ("1577880000", datetime(2020, 1, 1, 12, tzinfo=UTC))],  # unix seconds, as `timestamp` is written
)
@pytest.mark.parametrize("how", ["get", "json"])
def test_every_documented_time_form(client, published, timestamp, expected, how):
    receipt = {"msisdn": "447700900000", "to": "AcmeInc", "network-code": "12345", "messageId": "0A0000001234567B",
               "price": "0.03330000", "status": "delivered", "scts": "2001011400", "err-code": "0",
               "api-key": "abcd1234", "message-timestamp": timestamp, "timestamp": "1582650446",
               "nonce": "ec11dd3e-1e7f-4db5-9467-82b02cd223b9"}
    response = client.get(RECEIPTS, query_string=receipt) if how == "get" else client.post(RECEIPTS, json=receipt)
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.occurred_at == expected and event.payload.parse_warnings == ()
    assert event.payload.operator_done_at == datetime(2020, 1, 1, 14, tzinfo=UTC)  # scts 2001011400
    assert (event.payload.price, event.payload.network) == ("0.03330000", "12345")


def test_recorded_nexmo_inbound_form_post(client, published):
    body = ("keyword=HELLO%21&message-timestamp=2016-08-14+10%3A13%3A54&messageId=030000000926C4C2"
            "&msisdn=447700900001&text=Hello%21&to=447700900002&type=text")
    response = client.post(INBOUND, data=body, content_type=f"{FORM}; charset=UTF-8",
                           headers={"User-Agent": "Nexmo/MessagingHUB/v1.0"})
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.text, message.keyword, message.message_id) == ("Hello!", "HELLO!", "030000000926C4C2")
    assert message.occurred_at == datetime(2016, 8, 14, 10, 13, 54, tzinfo=UTC)


def test_concatenated_parts_arrive_apart_with_their_position(client, published):
    part = {"msisdn": "447700900001", "to": "447700900002", "messageId": "0B0000001", "text": "first half ",
            "type": "text", "keyword": "FIRST", "message-timestamp": "2020-01-01 12:00:00 +0000", "concat": "true",
            "concat-ref": "1", "concat-total": "2", "concat-part": "1"}
    second = dict(part, messageId="0B0000002", text="second half", keyword="SECOND", **{"concat-part": "2"})
    assert client.post(INBOUND, json=part).status_code == 200
    assert client.post(INBOUND, data=second).status_code == 200
    events = published.events("sms.inbound-messages", 2)
    assert sorted((e.payload.concat["part"], e.payload.text) for e in events) == [(1, "first half "),
                                                                                 (2, "second half")]
    assert {e.payload.concat["ref"] for e in events} == {"1"}


def test_error_code_is_kept_as_text(client, published):
    response = client.get(RECEIPTS, query_string={"messageId": "0A01", "status": "failed", "err-code": "X12"})
    assert response.status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_code, event.payload.error_description) == ("failed", "X12",
                                                                                                   None)

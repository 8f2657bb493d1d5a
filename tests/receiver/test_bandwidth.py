"""Bandwidth message callbacks through the real app and broker: JSON arrays of events, fanned out by `type`.

Fixtures: DELIVERED, FAILED and RECEIVED follow the examples of Bandwidth's Messaging "Webhooks" page
(dev.bandwidth.com/docs/messaging/webhooks: message-delivered with description `ok`, message-failed with errorCode
4432 `forbidden-to-send-to-number-from-this-account` and a tag, message-received with a media URL) and are checked
against the `bandwidth-sdk` models (StatusCallback, InboundCallback). The other events are built with those SDK
models and serialized by the SDK's ApiClient, as the SDK writes them.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from bandwidth.api_client import ApiClient
from bandwidth.models import (
    InboundCallback,
    InboundCallbackMessage,
    StatusCallback,
    StatusCallbackMessage,
    StatusCallbackTypeEnum,
)

from receiver.vendors import auth_catalog

RECEIPTS = "/v1/callbacks/bandwidth/delivery-receipts"
INBOUND = "/v1/callbacks/bandwidth/inbound-messages"
APP = "93de2206-9669-4e07-948d-329f4b722ee2"
OUT_MESSAGE = {"id": "14762070468292kw2fuqty55yp2b2", "time": "2016-09-14T18:20:16Z", "to": ["+12345678902"],
               "from": "+12345678901", "text": "", "applicationId": APP, "owner": "+12345678901",
               "direction": "out", "segmentCount": 1}
DELIVERED = {"time": "2016-09-14T18:20:16Z", "type": "message-delivered", "to": "+12345678902", "description": "ok",
             "message": OUT_MESSAGE}
FAILED = {"type": "message-failed", "time": "2016-09-14T18:20:16Z",
          "description": "forbidden-to-send-to-number-from-this-account", "to": "+12345678902", "errorCode": 4432,
          "message": dict(OUT_MESSAGE, id="14762070468292kw2fuqty55yp2b3", tag="v2 lab")}
RECEIVED = {"type": "message-received", "time": "2016-09-14T18:20:16Z", "description": "Incoming message received",
            "to": "+12345678902",
            "message": {"id": "14762070468292kw2fuqty55yp2b4", "time": "2016-09-14T18:20:16Z",
                        "to": ["+12345678902"], "from": "+12345678901", "text": "Hey, check this out!",
                        "applicationId": APP, "owner": "+12345678902", "direction": "in", "segmentCount": 1,
                        "media": ["https://messaging.bandwidth.com/api/v2/users/9900000/media/"
                                  "14762070468292kw2fuqty55yp2b4/0/bw.png"]}}


def sdk_status(event_type: str, to: list[str] | None = None, media: list[str] | None = None, **extra) -> dict:
    """A status event as the Bandwidth SDK's models serialize it."""
    message = StatusCallbackMessage(
        id="1589228074636lm4k2je7j7jklbn2", owner="+15554443333", application_id=APP,
        time=datetime(2024, 3, 5, 10, 15, tzinfo=UTC), segment_count=2, direction="out",
        to=to or ["+15552223333"], var_from="+15554443333", text="", tag="order-4411", media=media,
    )
    callback = StatusCallback(time=datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC), type=event_type,
                              to=(to or ["+15552223333"])[0], description="ok", message=message, **extra)
    return ApiClient().sanitize_for_serialization(callback)


def sdk_inbound(text: str | None, sender: str = "+15552223333", media: list[str] | None = None) -> dict:
    message = InboundCallbackMessage(
        id="1661365814859loidf7mcwd4qacn7", owner="+15554443333", application_id=APP,
        time=datetime(2024, 3, 5, 10, 15, tzinfo=UTC), segment_count=1, direction="in", to=["+15554443333"],
        var_from=sender, text=text, media=media,
    )
    callback = InboundCallback(time=datetime(2024, 3, 5, 10, 15, 1, tzinfo=UTC), type="message-received",
                               to="+15554443333", description="Incoming message received", message=message)
    return ApiClient().sanitize_for_serialization(callback)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_docs_examples_fit_bandwidths_own_models():
    assert StatusCallback.from_dict(DELIVERED).message.id == OUT_MESSAGE["id"]
    assert StatusCallback.from_dict(FAILED).error_code == 4432
    assert InboundCallback.from_dict(RECEIVED).message.media


def test_an_sms_delivered_event_is_a_delivered_receipt(client, published):
    response = client.post(RECEIPTS, json=[DELIVERED])
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.delivery-receipts")
    assert record.key == b"bandwidth:14762070468292kw2fuqty55yp2b2"
    headers = dict(record.headers)
    assert headers["ce_source"] == b"smshooks/bandwidth" and headers["ce_time"] == b"2016-09-14T18:20:16Z"
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_status, receipt.vendor_code) == ("delivered", "message-delivered", None)
    assert (receipt.recipient, receipt.sender, receipt.parts) == ("12345678902", "+12345678901", 1)
    assert receipt.error_description is None and receipt.raw["payload"] == DELIVERED


def test_a_failed_event_keeps_its_error_code_and_description(client, published):
    assert client.post(RECEIPTS, json=[FAILED]).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_code) == ("failed", "4432")
    assert receipt.error_description == "forbidden-to-send-to-number-from-this-account"
    assert receipt.client_ref == "v2 lab"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (sdk_status("message-sending", media=["https://example.com/cat.jpg"]), "pending"),
        (sdk_status("message-sent"), "pending"),
        (sdk_status("message-delivered"), "delivered"),
        (sdk_status("message-failed", error_code=4720), "failed"),
        (sdk_status("message-read", event_time=datetime(2024, 3, 5, 10, 16, tzinfo=UTC)), "delivered"),
        # MMS and group messages have no carrier receipt: Bandwidth's "delivered" is only its own hand-off
        (sdk_status("message-delivered", media=["https://example.com/cat.jpg"]), "unknown"),
        (sdk_status("message-delivered", to=["+15552223333", "+15552224444"]), "unknown"),
    ],
)
def test_each_status_event_maps(client, published, body, status):
    assert client.post(RECEIPTS, json=[body]).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == (status, body["type"])
    assert (event.payload.client_ref, event.payload.parts) == ("order-4411", 2)
    assert event.payload.occurred_at == datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)


def test_the_status_map_covers_every_status_type_of_the_sdk():
    from receiver.vendors.bandwidth import STATUSES

    assert set(STATUSES) == {t.value for t in StatusCallbackTypeEnum}


def test_a_message_type_bandwidth_adds_later_is_unknown(client, published):
    body = dict(sdk_status("message-delivered"), type="message-queued")
    assert client.post(RECEIPTS, json=[body]).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == ("unknown", "message-queued")


def test_an_array_fans_out_and_an_inbound_event_on_the_receipt_url_is_published_as_inbound(client, published):
    response = client.post(RECEIPTS, json=[DELIVERED, RECEIVED, FAILED])
    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["event_ids"]) == 3
    receipts = published.events("sms.delivery-receipts", 2)
    assert sorted(e.payload.status for e in receipts) == ["delivered", "failed"]
    [inbound] = published.events("sms.inbound-messages")
    assert inbound.payload.message_id == "14762070468292kw2fuqty55yp2b4"


def test_the_docs_inbound_message_with_media(client, published):
    response = client.post(INBOUND, json=[RECEIVED])
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"12345678901"
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.vendor, message.from_, message.to) == ("bandwidth", "12345678901", "12345678902")
    assert message.text == "Hey, check this out!"
    assert [m["url"] for m in message.media] == RECEIVED["message"]["media"]
    assert message.occurred_at == datetime(2016, 9, 14, 18, 20, 16, tzinfo=UTC)


def test_sdk_built_inbound_from_a_short_code_and_media_only(client, published):
    bodies = [sdk_inbound("STOP", sender="72345"), sdk_inbound("", media=["https://example.com/a.jpg"])]
    bodies[1]["message"]["id"] = "1661365814859loidf7mcwd4qacn8"
    assert client.post(INBOUND, json=bodies).status_code == 200
    events = {e.payload.message_id: e.payload for e in published.events("sms.inbound-messages", 2)}
    assert events["1661365814859loidf7mcwd4qacn7"].from_ == "72345"
    assert events["1661365814859loidf7mcwd4qacn7"].text == "STOP"
    assert events["1661365814859loidf7mcwd4qacn8"].media == ({"url": "https://example.com/a.jpg",
                                                              "content_type": None},)


def test_a_status_event_on_the_inbound_url_is_published_as_a_receipt(client, published):
    assert client.post(INBOUND, json=[DELIVERED]).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "delivered"


def test_unusable_entries_are_rejected_alone(client, published):
    no_id = dict(DELIVERED, message={k: v for k, v in OUT_MESSAGE.items() if k != "id"})
    no_type = {k: v for k, v in DELIVERED.items() if k != "type"}
    no_sender = dict(RECEIVED, message={k: v for k, v in RECEIVED["message"].items() if k != "from"})
    rbm = dict(RECEIVED, type="suggestion-response")
    response = client.post(RECEIPTS, json=[no_id, DELIVERED, no_type, no_sender, rbm, "x"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [(r["entry"], r["code"]) for r in body["rejected_entries"]] == [
        (0, "syntax_constraint_violation"), (2, "syntax_constraint_violation"), (3, "syntax_constraint_violation"),
        (4, "unknown_callback_type"), (5, "syntax_constraint_violation")]
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.message_id == OUT_MESSAGE["id"]
    rejected = published.rejected(5)
    assert json.loads(rejected[0]["body"]) == [no_id]  # replayable alone
    assert "id" in rejected[0]["errors"]["0"]["message"]
    assert "from" in rejected[2]["errors"]["0"]["message"]


@pytest.mark.parametrize("body", [[], [{"type": "message-delivered"}], [dict(RECEIVED, message={"id": "1"})]])
def test_a_callback_without_any_event_is_400_and_recorded(client, published, body):
    response = client.post(RECEIPTS, json=body)
    assert response.status_code == 400
    [rejected] = published.rejected()
    assert rejected["vendor"] == "bandwidth" and rejected["status"] == 400


def test_a_described_field_that_does_not_parse_is_a_warning(client, published):
    body = dict(DELIVERED, time="not a time", message=dict(OUT_MESSAGE, segmentCount="many"))
    assert client.post(RECEIPTS, json=[body]).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.occurred_at is None and event.payload.parts is None
    assert {w["field"] for w in event.payload.parse_warnings} == {"time", "segmentCount"}


def test_a_duplicate_event_has_the_same_event_id(client):
    first = client.post(RECEIPTS, json=[DELIVERED, FAILED]).get_json()["event_ids"]
    assert client.post(RECEIPTS, json=[DELIVERED, FAILED]).get_json()["event_ids"] == first


def test_basic_credentials_of_the_bandwidth_application(make_client):
    client = make_client(vendors={"bandwidth": {"auth": [{"scheme": "basic", "username": "bw", "password": "pw"}]}})
    assert client.post(RECEIPTS, json=[DELIVERED]).status_code == 401
    assert client.post(RECEIPTS, json=[DELIVERED], headers=basic("bw", "nope")).status_code == 401
    assert client.post(RECEIPTS, json=[DELIVERED], headers=basic("bw", "pw")).status_code == 200


def test_application_id_is_checked_against_account_ids(make_client, published):
    client = make_client(vendors={"bandwidth": {"account_ids": [APP]}})
    other = dict(FAILED, message=dict(FAILED["message"], applicationId="another-app"))
    response = client.post(RECEIPTS, json=[DELIVERED, other])
    assert response.status_code == 200
    assert [(r["entry"], r["code"]) for r in response.get_json()["rejected_entries"]] == [(1, "unknown_account")]


def test_bandwidth_cannot_be_configured_with_a_signature_it_does_not_send():
    from core.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="bandwidth cannot send 'standard_webhooks'"):
        load_settings({}, {"vendors": {"bandwidth": {"auth": [{"scheme": "standard_webhooks", "secret": "whsec_x"}]}}},
                      auth_catalog())


def test_a_send_response_registers_one_sent_message_per_recipient(client, published):
    from bandwidth.models import Message

    response = ApiClient().sanitize_for_serialization(Message(
        id="1589228074636lm4k2je7j7jklbn2", owner="+15554443333", application_id=APP,
        time=datetime(2024, 3, 5, 10, 15, tzinfo=UTC), segment_count=2, direction="out",
        to=["+15552223333", "+15552224444"], var_from="+15554443333", text="Hello", tag="order-4411"))
    answer = client.post("/v1/sent-messages", json={"vendor": "bandwidth", "response": response})
    assert answer.status_code == 200, answer.get_json()
    events = published.events("sms.sent-messages", 2)
    assert sorted(e.payload.recipient for e in events) == ["15552223333", "15552224444"]
    sent = events[0].payload
    assert (sent.message_id, sent.sender, sent.parts, sent.client_ref) == (
        "1589228074636lm4k2je7j7jklbn2", "+15554443333", 2, "order-4411")
    assert sent.sent_at == datetime(2024, 3, 5, 10, 15, tzinfo=UTC)
    assert {e.key for e in events} == {"bandwidth:1589228074636lm4k2je7j7jklbn2"}


@pytest.mark.parametrize("response", [{"to": ["+15552223333"]}, {"id": "x"}, {"id": "x", "to": ["not a number"]}])
def test_a_send_response_without_id_or_recipients_is_400(client, response):
    answer = client.post("/v1/sent-messages", json={"vendor": "bandwidth", "response": response})
    assert answer.status_code == 400 and "response" in answer.get_json()["errors"]


def test_a_status_event_with_an_unreadable_text_is_still_a_receipt(client, published):
    body = dict(DELIVERED, message=dict(OUT_MESSAGE, text=["not", "text"]))
    assert client.post(RECEIPTS, json=[body]).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "delivered" and [w["field"] for w in event.payload.parse_warnings] == ["text"]


def test_an_inbound_message_with_an_unreadable_text_and_no_media_is_400(client):
    body = dict(RECEIVED, message={k: v for k, v in RECEIVED["message"].items() if k != "media"} | {"text": 7})
    response = client.post(INBOUND, json=[body])
    assert response.status_code == 400 and "text" in response.get_json()["errors"]["0"]["message"]

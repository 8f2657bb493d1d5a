"""Infobip delivery report and inbound pushes through the real app and broker, fanned out per `results[]` entry.

Fixtures: DOCS_REPORTS follows the sample of Infobip's "Receive outbound SMS message report" webhook page
(infobip.com/docs/api/channels/sms/sms-messaging/logs-and-status-reports/receive-outbound-sms-message-report: its
field names, `yyyy-MM-dd'T'HH:mm:ss.SSS+0000` times, status/error/price objects), DOCS_INBOUND the sample of its
"Receive inbound SMS messages" webhook page; both are checked against Infobip's own models (SmsDeliveryResult,
SmsInboundMessageResult of `infobip-api-python-client`). Other reports are built with those SDK models and
serialized by the SDK's ApiClient, as its client would write them. Status names (DELIVERED_TO_HANDSET,
EC_ABSENT_SUBSCRIBER, ...) are from Infobip's response status and error code tables.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from infobip_api_client.api_client import ApiClient
from infobip_api_client.models import (
    MessagePrice,
    SmsDeliveryReport,
    SmsDeliveryResult,
    SmsInboundMessageResult,
    SmsMessageError,
    SmsMessageStatus,
)

from receiver.vendors import auth_catalog

RECEIPTS = "/v1/callbacks/infobip/delivery-receipts"
INBOUND = "/v1/callbacks/infobip/inbound-messages"
NO_ERROR = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error",
            "permanent": False}
DOCS_REPORTS = {
    "results": [
        {"bulkId": "BULK-ID-123-xyz", "price": {"pricePerMessage": 0.01, "currency": "EUR"},
         "status": {"id": 5, "groupId": 3, "groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET",
                    "description": "Message delivered to handset"},
         "error": NO_ERROR, "messageId": "MESSAGE-ID-123-xyz", "doneAt": "2019-11-09T16:00:00.000+0000",
         "smsCount": 1, "sentAt": "2019-11-09T16:00:00.000+0000", "to": "41793026727"},
        {"bulkId": "BULK-ID-123-xyz", "price": {"pricePerMessage": 0.01, "currency": "EUR"},
         "status": {"id": 5, "groupId": 3, "groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET",
                    "description": "Message delivered to handset"},
         "error": NO_ERROR, "messageId": "12db39c3-7822-4e72-a3ec-c87442c0ffc5",
         "doneAt": "2019-11-09T16:00:00.000+0000", "smsCount": 1, "sentAt": "2019-11-09T16:00:00.000+0000",
         "to": "41793026834"},
    ]
}
DOCS_INBOUND = {
    "results": [
        {"messageId": "817790313235066447", "from": "385916242493", "to": "385921004026",
         "text": "QUIZ Correct answer is Paris", "cleanText": "Correct answer is Paris", "keyword": "QUIZ",
         "receivedAt": "2016-10-06T09:28:39.220+0000", "smsCount": 1,
         "price": {"pricePerMessage": 0, "currency": "EUR"}, "callbackData": "callbackData"}
    ],
    "messageCount": 1,
    "pendingMessageCount": 0,
}


def sdk_report(message_id: str, group_id: int, group_name: str, name: str, description: str,
               error: SmsMessageError | None = None) -> dict:
    """One report as Infobip's SDK models serialize it."""
    report = SmsDeliveryReport(
        message_id=message_id, to="447700900123", sender="InfoSMS", bulk_id="bulk-7",
        sent_at=datetime(2024, 3, 5, 10, 15, tzinfo=UTC), done_at=datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC),
        message_count=2, mcc_mnc="23410", callback_data="order-4411",
        price=MessagePrice(price_per_message=0.0062, currency="GBP"),
        status=SmsMessageStatus(group_id=group_id, group_name=group_name, id=7, name=name, description=description),
        error=error or SmsMessageError(**{"group_id": 0, "group_name": "OK", "id": 0, "name": "NO_ERROR",
                                          "description": "No Error", "permanent": False}),
    )
    return ApiClient().sanitize_for_serialization(SmsDeliveryResult(results=[report]))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_docs_samples_fit_infobips_own_models():
    assert [r.message_id for r in SmsDeliveryResult.from_dict(DOCS_REPORTS).results] == [
        "MESSAGE-ID-123-xyz", "12db39c3-7822-4e72-a3ec-c87442c0ffc5"]
    assert SmsInboundMessageResult.from_dict(DOCS_INBOUND).results[0].keyword == "QUIZ"


def test_a_push_fans_out_one_receipt_per_result(client, published):
    response = client.post(RECEIPTS, json=DOCS_REPORTS)
    assert response.status_code == 200, response.get_json()
    assert len(set(response.get_json()["event_ids"])) == 2
    records = published.records("sms.delivery-receipts", 2)
    assert {r.key for r in records} == {b"infobip:MESSAGE-ID-123-xyz", b"infobip:12db39c3-7822-4e72-a3ec-c87442c0ffc5"}
    assert {dict(r.headers)["ce_time"] for r in records} == {b"2019-11-09T16:00:00Z"}
    events = {e.payload.message_id: e.payload for e in published.events("sms.delivery-receipts", 2)}
    receipt = events["MESSAGE-ID-123-xyz"]
    assert (receipt.status, receipt.vendor_status, receipt.vendor_code) == ("delivered", "DELIVERED",
                                                                            "DELIVERED_TO_HANDSET")
    assert receipt.error_description is None
    assert (receipt.recipient, receipt.batch_id, receipt.parts) == ("41793026727", "BULK-ID-123-xyz", 1)
    assert (receipt.price, receipt.currency) == ("0.01", "EUR")
    assert receipt.occurred_at == datetime(2019, 11, 9, 16, 0, tzinfo=UTC)
    # each event carries its own entry, not the whole push
    assert receipt.raw["payload"] == DOCS_REPORTS["results"][0]
    assert receipt.raw["vendor_time"] == "2019-11-09T16:00:00.000+0000"


def test_sdk_built_report_keeps_sender_parts_network_and_callback_data(client, published):
    body = sdk_report("2250be2d4219-3af1-78856-aabe-1362af1edfd2", 3, "DELIVERED", "DELIVERED_TO_OPERATOR",
                      "Message delivered to operator")
    assert client.post(RECEIPTS, json=body).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_code) == ("delivered", "DELIVERED_TO_OPERATOR")
    assert (receipt.sender, receipt.parts, receipt.network) == ("InfoSMS", 2, "23410")
    assert (receipt.client_ref, receipt.batch_id, receipt.price) == ("order-4411", "bulk-7", "0.0062")
    assert receipt.occurred_at == datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)


@pytest.mark.parametrize(
    ("group_id", "group", "name", "status"),
    [
        (1, "PENDING", "PENDING_ENROUTE", "pending"),
        (2, "UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED", "failed"),
        (3, "DELIVERED", "DELIVERED_TO_HANDSET", "delivered"),
        (4, "EXPIRED", "EXPIRED_EXPIRED", "expired"),
        (5, "REJECTED", "REJECTED_DESTINATION", "rejected"),
        (0, "ACCEPTED", "MESSAGE_ACCEPTED", "pending"),
    ],
)
def test_each_status_group_maps(client, published, group_id, group, name, status):
    assert client.post(RECEIPTS, json=sdk_report("m-1", group_id, group, name, "desc")).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status, event.payload.vendor_code) == (status, group, name)


def test_the_status_map_covers_every_group_of_the_sdk():
    from infobip_api_client.models import MessageGeneralStatus

    from receiver.vendors.infobip import GROUP_IDS, STATUSES

    assert set(STATUSES) == {g.value for g in MessageGeneralStatus} == set(GROUP_IDS.values())


def test_a_group_infobip_adds_later_is_unknown(client, published):
    body = sdk_report("m-1", 9, "PENDING", "SCHEDULED_LATER", "desc")
    body["results"][0]["status"]["groupName"] = "SCHEDULED"  # not in the SDK's enum (yet)
    assert client.post(RECEIPTS, json=body).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == ("unknown", "SCHEDULED")


def test_a_status_without_group_name_maps_by_group_id(client, published):
    body = sdk_report("m-2", 2, "UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED", "Message sent not delivered")
    del body["results"][0]["status"]["groupName"]
    assert client.post(RECEIPTS, json=body).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == ("failed", "UNDELIVERABLE")


def test_the_error_object_explains_a_failure(client, published):
    error = SmsMessageError(group_id=1, group_name="HANDSET_ERRORS", id=27, name="EC_ABSENT_SUBSCRIBER",
                            description="Absent Subscriber", permanent=False)
    body = sdk_report("m-3", 2, "UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED", "Message sent not delivered", error)
    assert client.post(RECEIPTS, json=body).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.error_description == "EC_ABSENT_SUBSCRIBER: Absent Subscriber"
    assert event.payload.raw["payload"]["error"]["permanent"] is False


def test_a_rejection_without_an_error_keeps_the_status_description(client, published):
    body = sdk_report("m-4", 5, "REJECTED", "REJECTED_NOT_ENOUGH_CREDITS", "Not enough credits")
    assert client.post(RECEIPTS, json=body).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.error_description) == ("rejected", "Not enough credits")


def test_a_resent_push_has_the_same_event_ids(client):
    first = client.post(RECEIPTS, json=DOCS_REPORTS).get_json()["event_ids"]
    assert client.post(RECEIPTS, json=DOCS_REPORTS).get_json()["event_ids"] == first


def test_an_unusable_result_is_a_rejected_entry_and_the_others_are_published(client, published):
    good = DOCS_REPORTS["results"][0]
    no_id = {k: v for k, v in good.items() if k != "messageId"}
    no_status = {k: v for k, v in good.items() if k != "status"} | {"messageId": "m-5"}
    no_group = dict(good, messageId="m-6", status={"id": 5, "name": "DELIVERED_TO_HANDSET"})
    response = client.post(RECEIPTS, json={"results": [no_id, good, no_status, "x", no_group]})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert len(body["event_ids"]) == 1
    assert [r["entry"] for r in body["rejected_entries"]] == [0, 2, 3, 4]
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.message_id == "MESSAGE-ID-123-xyz"
    rejected = published.rejected(4)
    assert [r["entry"] for r in rejected] == [0, 2, 3, 4]
    assert json.loads(rejected[0]["body"]) == {"results": [no_id]}  # replayable alone
    assert "messageId" in rejected[0]["errors"]["results"]["0"]
    assert "groupName" in rejected[3]["errors"]["results"]["0"]["status"]


@pytest.mark.parametrize("body", [{"results": []}, {"bulkId": "b"}, [DOCS_REPORTS], {"results": [{"to": "1"}]}])
def test_a_push_without_any_receipt_is_400_and_recorded(client, published, body):
    response = client.post(RECEIPTS, json=body)
    assert response.status_code == 400
    [rejected] = published.rejected()
    assert rejected["vendor"] == "infobip" and rejected["status"] == 400


def test_a_described_field_that_does_not_parse_is_a_warning_not_a_loss(client, published):
    result = dict(DOCS_REPORTS["results"][0], doneAt="yesterday", price={"pricePerMessage": "n/a"})
    assert client.post(RECEIPTS, json={"results": [result]}).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.occurred_at is None and event.payload.price is None
    assert {w["field"] for w in event.payload.parse_warnings} == {"doneAt", "pricePerMessage"}


def test_the_docs_inbound_message_is_published(client, published):
    response = client.post(INBOUND, json=DOCS_INBOUND)
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"385916242493"
    assert dict(record.headers)["ce_time"] == b"2016-10-06T09:28:39.220000Z"
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.vendor, message.message_id, message.to) == ("infobip", "817790313235066447", "385921004026")
    assert (message.text, message.keyword, message.client_ref) == ("QUIZ Correct answer is Paris", "QUIZ",
                                                                   "callbackData")
    assert message.raw["payload"] == DOCS_INBOUND["results"][0]


def test_inbound_push_fans_out_and_rejects_an_entry_without_text(client, published):
    first = DOCS_INBOUND["results"][0]
    alpha = dict(first, messageId="817790313235066448", **{"from": "ACME"})
    no_text = {k: v for k, v in first.items() if k != "text"} | {"messageId": "817790313235066449"}
    response = client.post(INBOUND, json=dict(DOCS_INBOUND, results=[first, alpha, no_text], messageCount=3))
    assert response.status_code == 200
    assert [r["entry"] for r in response.get_json()["rejected_entries"]] == [2]
    events = published.events("sms.inbound-messages", 2)
    assert sorted(e.payload.from_ for e in events) == ["385916242493", "ACME"]


@pytest.mark.parametrize("missing", ["messageId", "from", "text"])
def test_an_inbound_without_an_essential_field_is_400(client, missing):
    result = {k: v for k, v in DOCS_INBOUND["results"][0].items() if k != missing}
    response = client.post(INBOUND, json=dict(DOCS_INBOUND, results=[result]))
    assert response.status_code == 400 and missing in response.get_json()["errors"]["results"]["0"]


def test_basic_credentials_from_an_infobip_subscription(make_client, published):
    client = make_client(vendors={"infobip": {"auth": [{"scheme": "basic", "username": "ib", "password": "pw-1"}]}})
    assert client.post(RECEIPTS, json=DOCS_REPORTS).status_code == 401
    assert client.post(RECEIPTS, json=DOCS_REPORTS, headers=basic("ib", "wrong")).status_code == 401
    assert client.post(RECEIPTS, json=DOCS_REPORTS, headers=basic("ib", "pw-1")).status_code == 200
    assert len(published.events("sms.delivery-receipts", 2)) == 2


def test_url_token_for_a_per_message_notify_url(make_client):
    client = make_client(vendors={"infobip": {"auth": [{"scheme": "url_token", "token": "tok-9"}]}})
    assert client.post(RECEIPTS + "/wrong", json=DOCS_REPORTS).status_code == 401
    assert client.post(RECEIPTS + "/tok-9", json=DOCS_REPORTS).status_code == 200


def test_infobip_cannot_be_configured_with_a_scheme_it_cannot_send():
    from core.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="infobip cannot send 'bearer'"):
        load_settings({}, {"vendors": {"infobip": {"auth": [{"scheme": "bearer", "token": "t"}]}}}, auth_catalog())


def test_a_send_response_registers_one_sent_message_per_destination(client, published):
    from infobip_api_client.models import SmsResponse, SmsResponseDetails

    pending = SmsMessageStatus(group_id=1, group_name="PENDING", id=26, name="PENDING_ACCEPTED",
                               description="Message sent to next instance")
    response = ApiClient().sanitize_for_serialization(SmsResponse(bulk_id="bulk-7", messages=[
        SmsResponseDetails(message_id="m-10", status=pending, destination="447700900123"),
        SmsResponseDetails(message_id="m-11", status=pending, destination="41793026727"),
    ]))
    answer = client.post("/v1/sent-messages", json={"vendor": "infobip", "sender": "InfoSMS", "response": response})
    assert answer.status_code == 200, answer.get_json()
    events = {e.payload.message_id: e.payload for e in published.events("sms.sent-messages", 2)}
    assert {m: (p.recipient, p.batch_id, p.sender) for m, p in events.items()} == {
        "m-10": ("447700900123", "bulk-7", "InfoSMS"), "m-11": ("41793026727", "bulk-7", "InfoSMS")}
    assert events["m-10"].raw["payload"]["response"]["messages"] == [response["messages"][0]]
    # the key a receipt for the same message will carry
    assert {r.key for r in published.records("sms.sent-messages", 2)} == {b"infobip:m-10", b"infobip:m-11"}


def test_an_sms_api_v2_send_response_names_the_recipient_to(client, published):
    response = {"bulkId": "b-2", "messages": [{"to": "41793026727", "messageId": "2250be2d4219-3af1-78856",
                                               "status": {"groupId": 1, "groupName": "PENDING"}}]}
    assert client.post("/v1/sent-messages", json={"vendor": "infobip", "response": response}).status_code == 200
    [event] = published.events("sms.sent-messages")
    assert (event.payload.message_id, event.payload.recipient) == ("2250be2d4219-3af1-78856", "41793026727")


@pytest.mark.parametrize("response", [{"bulkId": "b"}, {"messages": [{"destination": "41793026727"}]},
                                      {"messages": [{"messageId": "m"}]}])
def test_a_send_response_without_ids_or_recipients_is_400(client, response):
    answer = client.post("/v1/sent-messages", json={"vendor": "infobip", "response": response})
    assert answer.status_code == 400 and "response" in answer.get_json()["errors"]


def test_an_empty_group_name_falls_back_to_the_group_id_with_a_warning(client, published):
    body = sdk_report("m-7", 4, "EXPIRED", "EXPIRED_EXPIRED", "Message expired")
    body["results"][0]["status"]["groupName"] = ""
    assert client.post(RECEIPTS, json=body).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == ("expired", "EXPIRED")
    assert [w["field"] for w in event.payload.parse_warnings] == ["groupName"]

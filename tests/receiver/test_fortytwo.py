"""Fortytwo receipts through the real app and broker: REST bundles (fan-out) and the HTTP API (GET, `OK`).

Fixtures: the SMS Gateway REST API callback page (fortytwo.com/apis/sms-gateway-rest-api/callbacks/: api_job_id,
client_job_id, data[] of type/message_id/status), the Two-Factor Authentication callback example
(fortytwo.com/apis/two-factor-authentication/callbacks/, TWO_FA_EXAMPLE below, verbatim but for the doc's stray
quote after api_job_id), the IM Gateway callback page (same envelope, `type` names the channel: VIBER etc.) and
the HTTP API callback page (sms-gateway-http-api/http-callback/: smsid, status, timestamp, to, from, customid).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

RECEIPTS = "/v1/callbacks/fortytwo/delivery-receipts"
JOB = "3f2c9a10-5b7e-4d21-9c44-8e1f0a2b3c4d"
INFO = {"type": "SMS", "message_id": "0017096336420010004321", "status": "DELIVRD", "timestamp": 1709633742117,
        "to": "447700900123", "custom_id": "order-4411", "error_code": 0}
BUNDLE = {"api_job_id": JOB, "client_job_id": "camp-2024-03", "data": [INFO]}
# the 2FA page's example as published: its `to` is masked with X's, its sender alphanumeric, viber_from empty
TWO_FA_EXAMPLE = {
    "api_job_id": "0c6ccf37-dd15-49ff-a12f-ffad8f2655a6", "client_job_id": "",
    "data": [{"type": "SMS", "message_id": "14466445287300014003", "status": "DELIVRD", "timestamp": 1443165174145,
              "micro_timestamp": 1443165174145000, "to": "35699XXXXXX", "sms_from": "Fortytwo", "viber_from": "",
              "client_message_id": "reference1", "error_code": 943}],
}
HTTP_API = {"smsid": "17096336420010004321", "status": "22", "timestamp": "1709633742", "to": "447700900123",
            "from": "ACME", "customid": "order-4411"}


def test_rest_receipt_is_published_normalized_with_headers_and_key(client, published):
    response = client.post(RECEIPTS, json=BUNDLE)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "accepted" and len(body["event_ids"]) == 1
    [record] = published.records("sms.delivery-receipts")
    headers = dict(record.headers)
    assert headers["ce_type"] == b"sms.delivery_receipt.v1" and headers["ce_source"] == b"smshooks/fortytwo"
    assert headers["ce_id"].decode() == body["event_ids"][0]
    assert headers["ce_time"] == b"2024-03-05T10:15:42.117000Z"
    assert record.key == b"fortytwo:17096336420010004321"  # leading zeros dropped
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_status, receipt.vendor_code) == ("delivered", "DELIVRD", "0")
    assert (receipt.batch_id, receipt.client_ref, receipt.recipient) == (JOB, "order-4411", "447700900123")
    assert receipt.raw["bundle"] == {"api_job_id": JOB, "client_job_id": "camp-2024-03"}
    assert receipt.raw["payload"] == INFO and receipt.raw["vendor_time"] == "1709633742117"


def test_bundle_fans_out_one_event_per_entry(client, published):
    data = [dict(INFO, message_id=str(100 + n), status=status)
            for n, status in enumerate(["DELIVRD", "ENROUTE", "UNDELIV"])]
    data[1].pop("custom_id")
    response = client.post(RECEIPTS, json=dict(BUNDLE, data=data))
    assert response.status_code == 200
    assert len(set(response.get_json()["event_ids"])) == 3
    events = {e.payload.message_id: e for e in published.events("sms.delivery-receipts", 3)}
    assert {m: e.payload.status for m, e in events.items()} == {
        "100": "delivered", "101": "pending", "102": "failed"}
    assert {e.key for e in events.values()} == {"fortytwo:100", "fortytwo:101", "fortytwo:102"}
    assert events["101"].payload.client_ref == "camp-2024-03"  # no custom_id: the client job id


def test_micro_timestamp_is_preferred(client, published):
    info = dict(INFO, micro_timestamp=1709633742117345)
    assert client.post(RECEIPTS, json=dict(BUNDLE, data=[info])).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.occurred_at == datetime(2024, 3, 5, 10, 15, 42, 117345, tzinfo=UTC)


def test_duplicate_bundle_has_the_same_event_ids(client):
    first = client.post(RECEIPTS, json=BUNDLE).get_json()["event_ids"]
    assert client.post(RECEIPTS, json=BUNDLE).get_json()["event_ids"] == first
    later = client.post(RECEIPTS, json=dict(BUNDLE, data=[dict(INFO, timestamp=1709633799000)])).get_json()
    assert later["event_ids"] != first


def test_http_api_get_is_answered_ok_as_plain_text(client, published):
    response = client.get(RECEIPTS, query_string=HTTP_API)
    assert response.status_code == 200
    assert response.data == b"OK" and response.mimetype == "text/plain"
    [record] = published.records("sms.delivery-receipts")
    assert record.key == b"fortytwo:17096336420010004321"
    headers = dict(record.headers)
    assert headers["ce_source"] == b"smshooks/fortytwo" and headers["ce_type"] == b"sms.delivery_receipt.v1"
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_status) == ("delivered", "22")
    assert receipt.occurred_at == datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)
    assert (receipt.recipient, receipt.sender, receipt.client_ref) == ("447700900123", "ACME", "order-4411")
    assert receipt.raw["format"] == "query" and receipt.raw["payload"]["smsid"] == HTTP_API["smsid"]


def test_http_api_duplicate_has_the_same_event_id(client, published):
    client.get(RECEIPTS, query_string=HTTP_API)
    client.get(RECEIPTS, query_string=HTTP_API)
    first, second = published.records("sms.delivery-receipts", 2)
    assert dict(first.headers)["ce_id"] == dict(second.headers)["ce_id"]


def test_http_api_unlisted_status_is_unknown(client, published):
    assert client.get(RECEIPTS, query_string=dict(HTTP_API, status="99")).data == b"OK"
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "unknown" and event.payload.vendor_status == "99"


def test_the_2fa_documents_example_is_a_receipt_with_a_warning_for_its_masked_number(client, published):
    response = client.post(RECEIPTS, json=TWO_FA_EXAMPLE)
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.message_id, receipt.status, receipt.sender) == ("14466445287300014003", "delivered", "Fortytwo")
    assert (receipt.vendor_code, receipt.client_ref, receipt.recipient) == ("943", "reference1", None)
    assert [w["field"] for w in receipt.parse_warnings] == ["to"]
    assert receipt.raw["payload"]["to"] == "35699XXXXXX"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (dict(BUNDLE, data=[]), "syntax_constraint_violation"),
        ({"api_job_id": JOB}, "syntax_constraint_violation"),
        (dict(BUNDLE, data=[{k: v for k, v in INFO.items() if k != "status"}]), "syntax_constraint_violation"),
        (dict(BUNDLE, data=[{k: v for k, v in INFO.items() if k != "message_id"}]), "syntax_constraint_violation"),
        (dict(BUNDLE, data=["DELIVRD"]), "syntax_constraint_violation"),
    ],
)
def test_a_bundle_without_a_receipt_is_400_and_recorded(client, published, payload, code):
    response = client.post(RECEIPTS, json=payload)
    assert response.status_code == 400
    error = response.get_json()
    assert error["code"] == code and "data" in error["errors"]
    [rejected] = published.rejected()
    assert rejected["vendor"] == "fortytwo" and rejected["code"] == code and "entry" not in rejected


@pytest.mark.parametrize(
    ("info", "field"),
    [
        (dict(INFO, timestamp="yesterday"), "timestamp"),
        (dict(INFO, to="4477-ab"), "to"),
        (dict(INFO, error_code=[1]), "error_code"),
        (dict(INFO, custom_id="x" * 300), "custom_id"),
    ],
)
def test_a_described_field_that_does_not_parse_is_a_warning(client, published, info, field):
    response = client.post(RECEIPTS, json=dict(BUNDLE, data=[info]))
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "delivered" and getattr(event.payload, {"timestamp": "occurred_at", "to":
           "recipient", "error_code": "vendor_code", "custom_id": "client_ref"}[field]) in (None, "camp-2024-03")
    assert [w["field"] for w in event.payload.parse_warnings] == [field]


def test_unknown_status_word_is_unknown(client, published):
    assert client.post(RECEIPTS, json=dict(BUNDLE, data=[dict(INFO, status="SCHEDLD")])).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == ("unknown", "SCHEDLD")


def test_a_mixed_channel_bundle_publishes_its_sms_and_keeps_the_rest_as_rejected(client, published):
    viber = dict(INFO, type="VIBER", message_id="200", viber_from="Acme")
    broken = {k: v for k, v in INFO.items() if k != "status"} | {"message_id": "300"}
    data = [INFO, viber, dict(INFO, message_id="101", type="sms"), broken]
    response = client.post(RECEIPTS, json=dict(BUNDLE, data=data))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert len(body["event_ids"]) == 2
    assert [(r["entry"], r["code"]) for r in body["rejected_entries"]] == [
        (1, "unknown_callback_type"), (3, "syntax_constraint_violation")]
    events = published.events("sms.delivery-receipts", 2)
    assert sorted(e.payload.message_id for e in events) == ["101", "17096336420010004321"]
    first, second = published.rejected(2)
    assert (first["entry"], first["status"], first["code"]) == (1, 403, "unknown_callback_type")
    assert (second["entry"], second["status"]) == (3, 400) and "status" in second["errors"]["data"]["0"]
    # each rejected entry is its own replayable callback: the job ids and that entry alone
    assert json.loads(first["body"]) == {"api_job_id": JOB, "client_job_id": "camp-2024-03", "data": [viber]}
    assert first["record_headers"]["ce_id"].decode() == f"{body['request_id']}/1"
    assert second["record_headers"]["ce_id"].decode() == f"{body['request_id']}/3"


def test_a_bundle_of_other_channels_only_is_403(client, published):
    response = client.post(RECEIPTS, json=dict(BUNDLE, data=[dict(INFO, type="VIBER"), dict(INFO, type="IM")]))
    assert response.status_code == 403 and response.get_json()["code"] == "unknown_callback_type"
    [rejected] = published.rejected()
    assert rejected["status"] == 403 and "entry" not in rejected and json.loads(rejected["body"])["data"][1]


def test_a_bundle_without_job_ids_is_still_a_receipt(client, published):
    assert client.post(RECEIPTS, json={"data": [INFO]}).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.batch_id is None and event.payload.client_ref == "order-4411"


def test_http_api_without_smsid_or_status_is_400_not_ok(client, published):
    for missing in ("smsid", "status"):
        query = {k: v for k, v in HTTP_API.items() if k != missing}
        response = client.get(RECEIPTS, query_string=query)
        assert response.status_code == 400 and response.get_json()["code"] == "syntax_constraint_violation"
        assert response.data != b"OK"
    assert {r["method"] for r in published.rejected(2)} == {"GET"}


def test_http_api_described_fields_and_unknown_status_are_accepted(client, published):
    query = dict(HTTP_API, status="delivered", timestamp="5 March", to="phone", **{"from": "Acme Ltd"})
    response = client.get(RECEIPTS, query_string=query)
    assert response.status_code == 200 and response.data == b"OK"
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_status, receipt.sender) == ("unknown", "delivered", "Acme Ltd")
    assert receipt.occurred_at is None and receipt.recipient is None
    assert sorted(w["field"] for w in receipt.parse_warnings) == ["timestamp", "to"]


def test_form_post_is_415(client, published):
    response = client.post(RECEIPTS, data=HTTP_API)
    assert response.status_code == 415
    assert published.rejected()[0]["code"] == "unsupported_media_type"


def test_fortytwo_has_no_inbound_or_click_route(client):
    assert client.post("/v1/callbacks/fortytwo/inbound-messages", json={}).status_code == 404
    assert client.post("/v1/callbacks/fortytwo/link-clicks", json={}).status_code == 404

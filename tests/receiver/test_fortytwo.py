"""Fortytwo receipts through the real app and broker: REST bundles (fan-out) and the HTTP API (GET, `OK`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

RECEIPTS = "/v1/callbacks/fortytwo/delivery-receipts"
JOB = "3f2c9a10-5b7e-4d21-9c44-8e1f0a2b3c4d"
INFO = {"type": "SMS", "message_id": "0017096336420010004321", "status": "DELIVRD", "timestamp": 1709633742117,
        "to": "447700900123", "custom_id": "order-4411", "error_code": 0}
BUNDLE = {"api_job_id": JOB, "client_job_id": "camp-2024-03", "data": [INFO]}
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


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"data": [INFO]}, "syntax_constraint_violation", "api_job_id"),
        (dict(BUNDLE, data=[]), "syntax_constraint_violation", "data"),
        (dict(BUNDLE, data=[{k: v for k, v in INFO.items() if k != "status"}]), "syntax_constraint_violation",
         "data"),
        (dict(BUNDLE, data=[dict(INFO, timestamp="yesterday")]), "syntax_invalid_parameter_format", "data"),
        (dict(BUNDLE, data=[dict(INFO, to="4477-ab")]), "syntax_invalid_parameter_format", "data"),
    ],
)
def test_invalid_bundle_is_400_and_recorded(client, published, payload, code, field):
    response = client.post(RECEIPTS, json=payload)
    assert response.status_code == 400
    error = response.get_json()
    assert error["code"] == code and field in error["errors"]
    [rejected] = published.rejected()
    assert rejected["vendor"] == "fortytwo" and rejected["code"] == code


def test_non_sms_entry_is_403_unknown_callback_type(client, published):
    response = client.post(RECEIPTS, json=dict(BUNDLE, data=[INFO, dict(INFO, type="VIBER")]))
    assert response.status_code == 403 and response.get_json()["code"] == "unknown_callback_type"
    assert published.rejected()[0]["status"] == 403


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({k: v for k, v in HTTP_API.items() if k != "smsid"}, "syntax_constraint_violation"),
        (dict(HTTP_API, status="delivered"), "syntax_constraint_violation"),
        (dict(HTTP_API, timestamp="5 March"), "syntax_invalid_parameter_format"),
        (dict(HTTP_API, to="phone"), "syntax_invalid_parameter_format"),
    ],
)
def test_invalid_http_api_query_is_400_not_ok(client, published, query, code):
    response = client.get(RECEIPTS, query_string=query)
    assert response.status_code == 400 and response.get_json()["code"] == code
    assert response.data != b"OK"
    assert published.rejected()[0]["method"] == "GET"


def test_form_post_is_415(client, published):
    response = client.post(RECEIPTS, data=HTTP_API)
    assert response.status_code == 415
    assert published.rejected()[0]["code"] == "unsupported_media_type"


def test_fortytwo_has_no_inbound_or_click_route(client):
    assert client.post("/v1/callbacks/fortytwo/inbound-messages", json={}).status_code == 404
    assert client.post("/v1/callbacks/fortytwo/link-clicks", json={}).status_code == 404

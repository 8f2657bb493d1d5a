"""The generic (canonical JSON) adapter and the shared HTTP contract, through a real broker.

Fixtures are our own canonical format (README "Event contract"): generic is ours, so it has no vendor oracle."""

from __future__ import annotations

import warnings

import pytest

RECEIPT = {"message_id": "ABC-1", "status": "delivered", "occurred_at": "2024-03-05T10:15:42Z",
           "recipient": "+44 7700 900123", "client_ref": "order-1"}


def test_receipt_is_published_with_headers_key_and_normalized_fields(client, published):
    response = client.post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "accepted" and len(body["event_ids"]) == 1
    assert response.headers["X-Request-ID"] == body["request_id"]
    [record] = published.records("sms.delivery-receipts")
    headers = dict(record.headers)
    assert headers["ce_type"] == b"sms.delivery_receipt.v1"
    assert headers["ce_source"] == b"smshooks/generic"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert headers["ce_id"].decode() == body["event_ids"][0]
    assert headers["ce_time"] == b"2024-03-05T10:15:42Z"
    assert headers["ce_requestid"].decode() == body["request_id"]
    assert record.key == b"generic:ABC-1"
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "delivered" and event.payload.is_final
    assert event.payload.recipient == "447700900123"
    assert event.payload.raw["payload"]["client_ref"] == "order-1"


def test_retry_yields_the_same_event_id(client):
    first = client.post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT).get_json()
    second = client.post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT).get_json()
    assert first["event_ids"] == second["event_ids"]
    assert first["request_id"] != second["request_id"]


def test_list_fans_out_one_event_each(client, published):
    items = [dict(RECEIPT, message_id=f"m{i}") for i in range(3)]
    response = client.post("/v1/callbacks/generic/delivery-receipts", json=items)
    assert response.status_code == 200 and len(set(response.get_json()["event_ids"])) == 3
    assert {e.payload.message_id for e in published.events("sms.delivery-receipts", 3)} == {"m0", "m1", "m2"}


def test_inbound_is_keyed_by_subscriber(client, published):
    response = client.post("/v1/callbacks/generic/inbound-messages",
                           json={"message_id": "in-1", "from": "+447700900123", "to": "60777", "text": "STOP"})
    assert response.status_code == 200
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"447700900123"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "syntax_invalid_json"),
        (b'{"message_id":"a","message_id":"b","status":"delivered"}', "application/json", 400, "syntax_invalid_json"),
        (b'{"message_id":"a","status":"delivered","recipient":"not-a-number"}', "application/json", 400,
         "syntax_invalid_parameter_format"),
        (b'{"status":"delivered"}', "application/json", 400, "syntax_constraint_violation"),
        (b'{"message_id":5,"status":"delivered"}', "application/json", 400, "syntax_constraint_violation"),
        (b"message_id=a&status=delivered", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"message_id":"a"}', "text/plain", 415, "unsupported_media_type"),
        (b"\xff\xfe\xfa", "application/json", 400, "syntax_invalid_parameter_format"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "syntax_constraint_violation"),
    ],
)
def test_bad_input_gets_documented_answer_and_is_recorded(client, published, body, content_type, status, code):
    response = client.post("/v1/callbacks/generic/delivery-receipts", data=body, content_type=content_type)
    assert response.status_code == status, response.get_json()
    error = response.get_json()
    assert error["code"] == code and error["request_id"] == response.headers["X-Request-ID"]
    [rejected] = published.rejected()
    assert rejected["code"] == code and rejected["status"] == status
    assert rejected["body"] == body and rejected["request_id"] == error["request_id"]
    assert rejected["record_headers"]["reason"] == code.encode()


def test_oversized_body_is_413_and_recorded_truncated(make_client, published):
    client = make_client(max_body_bytes=1024)
    response = client.post("/v1/callbacks/generic/delivery-receipts", data=b"x" * 5000,
                           content_type="application/json")
    assert response.status_code == 413 and response.get_json()["code"] == "payload_too_large"
    [rejected] = published.rejected()
    assert rejected["truncated"] is True and len(rejected["body"]) == 1024


def test_unknown_vendor_kind_and_method(client):
    assert client.post("/v1/callbacks/nobody/delivery-receipts", json={}).status_code == 404
    assert client.post("/v1/callbacks/generic/nothing", json={}).status_code == 404
    assert client.get("/nowhere").get_json()["code"] == "not_found"
    response = client.get("/v1/callbacks/generic/delivery-receipts")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


def test_disabled_vendor_is_404(make_client):
    client = make_client(vendors={"generic": {"enabled": False}})
    assert client.post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT).status_code == 404


def test_rate_limit_answers_429_with_retry_after(make_client):
    client = make_client(rate_limit_per_source="2/minute")
    statuses = [client.post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = client.post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT)
    assert response.get_json()["code"] == "rate_limited" and int(response.headers["Retry-After"]) >= 1


def test_broker_down_is_503_with_retry_after_not_500():
    from receiver import create_app
    from smshooks.broker import free_port

    app = create_app({"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}", "publish_timeout_seconds": 0.5})
    response = app.test_client().post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["code"] == "service_unavailable"


def test_openapi_document_lists_callback_routes(client):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        document = client.get("/openapi.json").get_json()
    # two vendors' nested schemas of one class name would be renamed silently by apispec, with this warning only
    assert not [w for w in caught if "Multiple schemas resolved" in str(w.message)]
    assert document["openapi"].startswith("3.")
    assert "/v1/callbacks/generic/delivery-receipts" in document["paths"]
    assert "ErrorBody" in document["components"]["schemas"]


INBOUND = {"message_id": "in-1", "from": "+447700900123", "to": "60777", "text": "STOP"}


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        # what the vendor adapters now read as a parse warning or as `unknown` stays a 400 for our own format
        ("delivery-receipts", dict(RECEIPT, occurred_at="yesterday"), "occurred_at"),
        ("delivery-receipts", dict(RECEIPT, status="Delivered-ish"), "status"),
        ("delivery-receipts", dict(RECEIPT, recipient="someone"), "recipient"),
        ("delivery-receipts", dict(RECEIPT, parts=0), "parts"),
        ("delivery-receipts", dict(RECEIPT, currency="pounds"), "currency"),
        ("inbound-messages", dict(INBOUND, occurred_at="05/03/2024"), "occurred_at"),
        ("inbound-messages", dict(INBOUND, text="x" * 2001), "text"),
        ("link-clicks", {"message_id": "m", "recipient": "+447700900123", "url": "shop.example.com"}, "url"),
    ],
)
def test_generic_stays_strict_where_vendors_are_tolerant(client, published, path, payload, field):
    response = client.post(f"/v1/callbacks/generic/{path}", json=payload)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]
    assert published.rejected()[0]["code"] == response.get_json()["code"]


def test_a_generic_list_with_one_bad_item_is_refused_whole(client, published):
    items = [RECEIPT, dict(RECEIPT, message_id="m2", status="arrived"), dict(RECEIPT, message_id="m3")]
    response = client.post("/v1/callbacks/generic/delivery-receipts", json=items)
    assert response.status_code == 400 and list(response.get_json()["errors"]) == ["1"]
    assert "rejected_entries" not in response.get_json()
    [rejected] = published.rejected()
    assert "entry" not in rejected
    assert published.records("sms.delivery-receipts", expected=1, timeout=1.0) == []


def test_an_alphanumeric_inbound_sender_is_valid_canonical_input(client, published):
    assert client.post("/v1/callbacks/generic/inbound-messages", json=dict(INBOUND, **{"from": "ACME"})).status_code \
        == 200
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"ACME"

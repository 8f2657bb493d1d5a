"""Jasmin DLRs and MOs through the real app and broker, by GET and by form POST, acknowledged `ACK/Jasmin`.

Fixtures follow the parameters of Jasmin's HTTP API docs (jookies/jasmin misc/doc/sources/apis/http/index.rst); the
bytes exactly as its thrower encodes them are in test_jasmin_real.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

RECEIPTS = "/v1/callbacks/jasmin/delivery-receipts"
INBOUND = "/v1/callbacks/jasmin/inbound-messages"
MESSAGE_ID = "16FD2706-8BAF-433B-82EB-8C7FADA847DA"
LEVEL_1 = {"id": MESSAGE_ID, "message_status": "ESME_ROK", "level": "1", "connector": "smsc-uk"}
LEVEL_2 = {"id": MESSAGE_ID, "message_status": "DELIVRD", "level": "2", "connector": "smsc-uk",
           "id_smsc": "0A1B2C3D", "sub": "001", "dlvrd": "001", "subdate": "2403051015", "donedate": "2403051016",
           "err": "000", "text": "Your order has ship"}
MO = {"id": "5F0E8C6A-1B2C-4D3E-9F00-112233445566", "from": "447700900123", "to": "60777",
      "origin-connector": "smsc-uk", "content": "STOP", "binary": "53544f50", "priority": "1", "coding": "0"}


def assert_acknowledged(response) -> None:
    """Jasmin only stops retrying on 200 with the body exactly ACK/Jasmin."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.data == b"ACK/Jasmin" and response.mimetype == "text/plain"


def test_level_2_receipt_by_form_post(client, published):
    assert_acknowledged(client.post(RECEIPTS, data=LEVEL_2))
    [record] = published.records("sms.delivery-receipts")
    headers = dict(record.headers)
    assert headers["ce_type"] == b"sms.delivery_receipt.v1" and headers["ce_source"] == b"smshooks/jasmin"
    assert headers["ce_time"] == b"2024-03-05T10:16:00Z"
    assert record.key == f"jasmin:{MESSAGE_ID.lower()}".encode()
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_status, receipt.vendor_code) == ("delivered", "DELIVRD", "000")
    assert receipt.operator_done_at == receipt.occurred_at == datetime(2024, 3, 5, 10, 16, tzinfo=UTC)
    assert receipt.raw["format"] == "form" and receipt.raw["payload"]["id_smsc"] == "0A1B2C3D"
    assert receipt.raw["vendor_time"] == "2403051016"


def test_level_1_receipt_by_get(client, published):
    assert_acknowledged(client.get(RECEIPTS, query_string=LEVEL_1))
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "pending" and event.payload.occurred_at is None
    assert event.payload.raw["format"] == "query"
    assert event.key == f"jasmin:{MESSAGE_ID.lower()}"


def test_refused_submit_is_rejected(client, published):
    assert_acknowledged(client.get(RECEIPTS, query_string=dict(LEVEL_1, message_status="ESME_RINVDSTADR")))
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "rejected" and event.payload.is_final


def test_duplicate_receipt_has_the_same_event_id_by_either_method(client, published):
    client.post(RECEIPTS, data=LEVEL_2)
    client.get(RECEIPTS, query_string=LEVEL_2)
    client.get(RECEIPTS, query_string=LEVEL_1)
    events = published.events("sms.delivery-receipts", 3)
    assert len(events) == 3
    ids_by_status: dict[str, set[str]] = {}
    for event in events:
        ids_by_status.setdefault(event.payload.vendor_status, set()).add(event.id)
    assert {status: len(ids) for status, ids in ids_by_status.items()} == {"DELIVRD": 1, "ESME_ROK": 1}


def test_blank_optional_parameters_are_absent(client, published):
    assert_acknowledged(client.post(RECEIPTS, data=dict(LEVEL_2, donedate="", err="")))
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.operator_done_at is None and event.payload.vendor_code is None


def test_inbound_message_by_form_post(client, published):
    assert_acknowledged(client.post(INBOUND, data=MO))
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"447700900123"
    headers = dict(record.headers)
    assert headers["ce_type"] == b"sms.inbound_message.v1" and headers["ce_source"] == b"smshooks/jasmin"
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.message_id, message.from_, message.to) == (MO["id"].lower(), "447700900123", "60777")
    assert (message.text, message.binary) == ("STOP", "53544f50")
    assert message.raw["payload"]["origin-connector"] == "smsc-uk"


def test_inbound_message_by_get_and_duplicate_has_the_same_event_id(client, published):
    assert_acknowledged(client.get(INBOUND, query_string=MO))
    assert_acknowledged(client.get(INBOUND, query_string=MO))
    first, second = published.events("sms.inbound-messages", 2)
    assert first.id == second.id and first.payload.raw["format"] == "query"


def test_ucs2_text_is_taken_from_the_binary_copy(client, published):
    # "Привет" in UTF-16BE; the content parameter would hold the raw UCS2 bytes
    assert_acknowledged(client.post(INBOUND, data=dict(MO, content="?", binary="041f04400438043204350442", coding="8")))
    [event] = published.events("sms.inbound-messages")
    assert event.payload.text == "Привет"


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        (RECEIPTS, {k: v for k, v in LEVEL_2.items() if k != "message_status"}, "syntax_constraint_violation"),
        (RECEIPTS, {k: v for k, v in LEVEL_2.items() if k != "id"}, "syntax_constraint_violation"),
        (INBOUND, {k: v for k, v in MO.items() if k != "from"}, "syntax_constraint_violation"),
        (INBOUND, {k: v for k, v in MO.items() if k not in ("content", "binary")}, "syntax_constraint_violation"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_invalid_callback_is_400_without_ack_and_recorded(client, published, path, params, code, method):
    response = client.get(path, query_string=params) if method == "GET" else client.post(path, data=params)
    assert response.status_code == 400 and response.data != b"ACK/Jasmin"
    assert response.get_json()["code"] == code
    [rejected] = published.rejected()
    assert rejected["vendor"] == "jasmin" and rejected["code"] == code and rejected["method"] == method


@pytest.mark.parametrize(
    ("path", "params", "topic", "warned"),
    [
        (RECEIPTS, dict(LEVEL_2, level="4"), "sms.delivery-receipts", ["level"]),  # only describes the receipt
        (INBOUND, {k: v for k, v in MO.items() if k != "origin-connector"}, "sms.inbound-messages", []),
        (INBOUND, dict(MO, **{"from": "someone"}), "sms.inbound-messages", []),  # alphanumeric senders exist
        (INBOUND, {k: v for k, v in MO.items() if k != "to"}, "sms.inbound-messages", []),
        (INBOUND, dict(MO, binary="xyz"), "sms.inbound-messages", ["binary"]),  # content still stands
    ],
)
def test_what_once_was_a_400_is_now_accepted(client, published, path, params, topic, warned):
    assert_acknowledged(client.get(path, query_string=params))
    [event] = published.events(topic)
    assert [w["field"] for w in event.payload.parse_warnings] == warned


@pytest.mark.parametrize("path", [RECEIPTS, INBOUND])
def test_json_post_is_415(client, published, path):
    response = client.post(path, json=LEVEL_2)
    assert response.status_code == 415 and response.get_json()["code"] == "unsupported_media_type"
    assert published.rejected()[0]["status"] == 415

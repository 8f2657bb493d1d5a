"""Jasmin callbacks as Jasmin's own thrower sends them, through the real app and broker.

Fixtures come from jookies/jasmin: routing/throwers.py (deliverSmHttpThrower: `content` is the PDU's raw
short_message bytes, `binary` their hexlified copy, `coding` DataCodingEncoder's raw data_coding byte, and all of
them form-encoded by treq, so UCS2 arrives as `coding=%08`; DLRThrower: id, level, message_status, connector, and for
levels 2-3 id_smsc, sub, dlvrd, subdate, donedate, err, text), tests/routing/test_throwers_deliver_sm.py
(test_throwing_http_utf16 and test_throwing_http_utf8: the bytes 06 2A 06 33 06 2A and D8 AA D8 B3 D8 AA under
data_coding 8), protocols/smpp/operations.py isDeliveryReceipt (fields the SMSC leaves out become `ND`; `submit
date:`/`done date:` take any run of digits), git history of throwers.py (`coding` was the SMPP name until 2017 and
the number until 2020), the HTTP API docs (misc/doc/sources/apis/http/index.rst: `from` may be `Jasmin`, `binary`
example `062A063062A`), and nyaruka/courier handlers/jasmin/handler_test.go ("Receive Valid Message":
`content=%05v%05nement&coding=0`, GSM 03.38 for "événement").
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

RECEIPTS = "/v1/callbacks/jasmin/delivery-receipts"
INBOUND = "/v1/callbacks/jasmin/inbound-messages"
FORM = "application/x-www-form-urlencoded"
MO_ID = "5f0e8c6a-1b2c-4d3e-9f00-112233445566"
DLR_ID = "16fd2706-8baf-433b-82eb-8c7fada847da"


def mo(content: bytes, coding: bytes | None, **extra) -> dict:
    """The parameters deliverSmHttpThrower builds for one deliver_sm (values as bytes, as the thrower has them)."""
    args = {"id": MO_ID, "from": "+21620203060", "to": "20203060", "origin-connector": "smsc-tn",
            "content": content, "binary": content.hex().encode(), "priority": 0, **extra}
    if coding is not None:
        args["coding"] = coding
    return args


def thrown(client, path: str, args: dict, method: str):
    """What treq sends for the thrower's dict: a form body for POST, a query string for GET."""
    encoded = urlencode(args)
    if method == "GET":
        return client.get(path, query_string=encoded)
    return client.post(path, data=encoded, content_type=FORM)


def acknowledged(response) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.data == b"ACK/Jasmin"


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize(
    ("content", "coding", "text"),
    [
        ("توقف".encode("utf-16-be"), b"\x08", "توقف"),  # Arabic STOP, UCS2, coding as the raw byte %08
        (b"\x06\x2a\x06\x33\x06\x2a", b"\x08", "تست"),  # Jasmin's test_throwing_http_utf16
        (b"\xd8\xaa\xd8\xb3\xd8\xaa", b"\x08", "تست"),  # Jasmin's test_throwing_http_utf8: UTF-8 declared UCS2
        ("ARRÊT".encode("latin-1"), b"\x03", "ARRÊT"),  # French STOP, Latin-1, %03
        (b"\x05v\x05nement", b"\x00", "événement"),  # GSM 03.38 default alphabet, %00 (Courier's fixture text)
        (b"Stop \x00 \x1be\x02", b"\x00", "Stop @ €$"),  # GSM @ is byte 0, € the escape 1B 65, $ is 02
        ("Стоп".encode("utf-16-be"), b"8", "Стоп"),  # Jasmin 2017-2020: coding as the number
        ("Стоп".encode("utf-16-be"), b"UCS2", "Стоп"),  # Jasmin before 2017: coding as the SMPP name
        (b"STOP", b"SMSC_DEFAULT_ALPHABET", "STOP"),
        (b"Stop", None, "Stop"),  # no data_coding: SMPP's default
        ("テスト".encode("iso2022_jp"), b"\x0a", "テスト"),  # ISO-2022-JP: its raw byte is a line feed
    ],
)
def test_mo_content_is_decoded_by_its_data_coding(client, published, method, content, coding, text):
    acknowledged(thrown(client, INBOUND, mo(content, coding), method))
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert message.text == text and message.binary == content.hex() and message.parse_warnings == ()
    assert message.raw["payload"]["binary"] == content.hex()


def test_gsm_mo_without_a_binary_copy_decodes_content(client, published):
    # Courier's "Receive Valid Message" body, with Jasmin's lowercase names
    body = "content=%05v%05nement&coding=0&from=2349067554729&to=2349067554711&id=1001&origin-connector=c"
    acknowledged(client.post(INBOUND, data=body, content_type=FORM))
    [event] = published.events("sms.inbound-messages")
    assert event.payload.text == "événement" and event.payload.from_ == "2349067554729"


def test_alphanumeric_sender_from_the_http_api_docs(client, published):
    acknowledged(thrown(client, INBOUND, mo(b"hello", b"\x00", **{"from": "Jasmin"}), "GET"))
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"Jasmin"
    [event] = published.events("sms.inbound-messages")
    assert (event.payload.from_, event.payload.to, event.payload.text) == ("Jasmin", "20203060", "hello")


def test_octet_data_has_no_text_and_keeps_the_binary_copy(client, published):
    acknowledged(thrown(client, INBOUND, mo(b"\x01\x02\xff", b"\x04"), "POST"))
    [event] = published.events("sms.inbound-messages")
    assert event.payload.text is None and event.payload.binary == "0102ff"


def test_the_docs_odd_binary_example_warns_and_content_stands(client, published):
    args = dict(mo(b"hello", b"\x00"), binary="062A063062A")  # the HTTP API docs' example, 11 hex digits
    acknowledged(thrown(client, INBOUND, args, "POST"))
    [event] = published.events("sms.inbound-messages")
    assert event.payload.text == "hello" and event.payload.binary is None
    assert [w["field"] for w in event.payload.parse_warnings] == ["binary"]


def test_an_unknown_coding_warns_and_reads_as_the_default(client, published):
    acknowledged(thrown(client, INBOUND, mo(b"STOP", b"KLINGON"), "POST"))
    [event] = published.events("sms.inbound-messages")
    assert event.payload.text == "STOP" and [w["field"] for w in event.payload.parse_warnings] == ["coding"]


def test_mo_without_content_or_sender_is_400(client, published):
    args = mo(b"x", b"\x00")
    no_content = {k: v for k, v in args.items() if k not in ("content", "binary")}
    no_sender = {k: v for k, v in args.items() if k != "from"}
    assert thrown(client, INBOUND, no_content, "POST").status_code == 400
    assert thrown(client, INBOUND, no_sender, "POST").status_code == 400
    assert [r["code"] for r in published.rejected(2)] == ["syntax_constraint_violation"] * 2


def dlr(**fields) -> dict:
    """DLRThrower's level-2 parameters (level is an int in the thrower)."""
    return {"id": DLR_ID, "level": 2, "message_status": "DELIVRD", "connector": "smsc-tn", "id_smsc": "2567",
            "sub": "001", "dlvrd": "001", "subdate": "1311022338", "donedate": "1311022339", "err": "000",
            "text": "Hello foo bar", **fields}


def test_receipt_fields_the_smsc_left_out_are_nd_and_absent(client, published):
    # isDeliveryReceipt defaults sub, dlvrd, sdate, ddate and err to ND and text to '' when the SMSC sends only
    # the receipted_message_id and message_state TLVs
    args = dlr(sub="ND", dlvrd="ND", subdate="ND", donedate="ND", err="ND", text="")
    acknowledged(thrown(client, RECEIPTS, args, "POST"))
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert receipt.status == "delivered" and receipt.parse_warnings == ()
    assert receipt.occurred_at is None and receipt.vendor_code is None
    assert receipt.raw["payload"]["donedate"] == "ND" and "vendor_time" not in receipt.raw


@pytest.mark.parametrize(
    ("donedate", "iso"),
    [("1311022339", "2013-11-02T23:39:00Z"),  # YYMMDDhhmm, the documented layout
     ("131102233945", "2013-11-02T23:39:45Z"),  # YYMMDDhhmmss
     ("201311022339", "2013-11-02T23:39:00Z"),  # YYYYMMDDhhmm
     ("20131102233945", "2013-11-02T23:39:45Z")],  # YYYYMMDDhhmmss
)
def test_every_smsc_date_layout(client, published, donedate, iso):
    acknowledged(thrown(client, RECEIPTS, dlr(donedate=donedate, subdate=donedate), "GET"))
    [record] = published.records("sms.delivery-receipts")
    assert dict(record.headers)["ce_time"] == iso.encode()
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.parse_warnings == () and event.payload.raw["vendor_time"] == donedate


@pytest.mark.parametrize(
    ("message_status", "status"),
    [("DELIVRD", "delivered"), ("EXPIRED", "expired"), ("DELETED", "failed"), ("UNDELIV", "failed"),
     ("ACCEPTD", "pending"), ("UNKNOWN", "unknown"), ("REJECTD", "rejected"), ("ESME_ROK", "pending"),
     ("ESME_RINVNUMDESTS", "rejected"), ("SOMETHING_NEW", "unknown")],
)
def test_every_message_status_jasmin_throws(client, published, message_status, status):
    acknowledged(thrown(client, RECEIPTS, dlr(message_status=message_status), "POST"))
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == (status, message_status)


def test_level_1_receipt_exactly_as_thrown(client, published):
    args = {"id": DLR_ID, "level": 1, "message_status": "ESME_ROK", "connector": "smsc-tn"}
    acknowledged(thrown(client, RECEIPTS, args, "POST"))
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "pending" and event.payload.message_id == DLR_ID


def test_descriptive_fields_out_of_shape_warn_instead_of_refusing(client, published):
    acknowledged(thrown(client, RECEIPTS, dlr(level=4, err="x" * 80, sub="1" * 40), "POST"))
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.status == "delivered" and event.payload.vendor_code is None
    assert sorted(w["field"] for w in event.payload.parse_warnings) == ["err", "level", "sub"]

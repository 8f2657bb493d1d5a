"""Unit tests, no broker: every status mapping row and every time format of Mobivate, Fortytwo and Jasmin, and
recipients' countries (libphonenumber's plans)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receiver import smpp
from receiver.fields import PARSE_WARNINGS
from receiver.phones import country_iso2 as recipient_country
from receiver.vendors import fortytwo, jasmin, mobivate

MOBIVATE_ROWS = [
    ("DELIVERED", 1, "delivered"),
    ("delivered", 1, "delivered"),  # names compared case-insensitively
    ("ACCEPTED", 2, "pending"),
    ("EXPIRED", 9, "expired"),
    ("EXPIRED_AT_SMSC", 9, "expired"),
    ("REJECTED", 9, "rejected"),
    ("REJECTD", 9, "rejected"),
    ("UNDELIVERABLE", 9, "failed"),
    ("UNDELIVERED", 9, "failed"),
    ("FAILED", 9, "failed"),
    ("FAILURE", 9, "failed"),
    ("DELETED", 9, "failed"),
    ("ENROUTE", 9, "pending"),
    ("SENT", 9, "pending"),
    ("QUEUED", 9, "pending"),
    ("PENDING", 9, "pending"),
    ("SENDING", 9, "unknown"),  # not a listed name: exact names only for the pending family
    ("SOMETHING_NEW", 9, "unknown"),
    ("SOMETHING_NEW", 1, "delivered"),  # an unknown name falls back on the documented code
    ("SOMETHING_NEW", 2, "pending"),
    ("SOMETHING_NEW", None, "unknown"),
]


@pytest.mark.parametrize(("name", "code", "expected"), MOBIVATE_ROWS)
def test_mobivate_status_mapping(name, code, expected):
    assert mobivate.receipt_status(name, code) == expected


@pytest.mark.parametrize(("iso2l", "expected"), [("UK", "GB"), ("uk", "GB"), ("FR", "FR"), ("de", "DE"),
                                                 (None, None), ("", None)])
def test_mobivate_iso2l_correction(iso2l, expected):
    assert mobivate.country_iso2(iso2l) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A1B2C3D4E5F60718293A4B5C6D7E8F90", "a1b2c3d4e5f60718293a4b5c6d7e8f90"),
        ("EF5796CE-E326-4A09-9033-6B457039B1BA", "ef5796cee3264a0990336b457039b1ba"),
        ("order-1-2", "order-1-2"),  # dashes kept unless the id is a UUID
    ],
)
def test_mobivate_message_id_spelling(raw, expected):
    assert mobivate.message_id(raw) == expected


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2023-07-28T03:23:22.000+00:00", datetime(2023, 7, 28, 3, 23, 22, tzinfo=UTC)),  # receipts: with colon
        ("2023-09-01T00:30:36+0000", datetime(2023, 9, 1, 0, 30, 36, tzinfo=UTC)),  # inbound: without colon
        ("2023-09-01T02:30:36+0200", datetime(2023, 9, 1, 0, 30, 36, tzinfo=UTC)),
        ("2023-09-01T00:30:36Z", datetime(2023, 9, 1, 0, 30, 36, tzinfo=UTC)),
    ],
)
def test_mobivate_times(created, expected):
    assert mobivate.InboundSchema().load(
        {"id": "1", "originator": "447700900123", "recipient": "60777", "body": "x", "created": created}
    )["created"] == expected
    assert mobivate.ReceiptSchema().load(
        {"deliveryMessageId": "1", "created": created, "status": "DELIVERED", "statusCode": 1}
    )["created"] == expected


def warnings_of(load) -> tuple[dict, list[dict[str, str]]]:
    """What a schema load returns and the parse warnings it noted (as the view collects them)."""
    warnings: list[dict[str, str]] = []
    token = PARSE_WARNINGS.set(warnings)
    try:
        return load(), warnings
    finally:
        PARSE_WARNINGS.reset(token)


@pytest.mark.parametrize("created", ["2023-09-31T00:30:36+0000", "01/09/2023", "", "1693528236"])
def test_mobivate_bad_times_are_parse_warnings(created):
    loaded, warnings = warnings_of(lambda: mobivate.ReceiptSchema().load(
        {"deliveryMessageId": "1", "created": created, "status": "X", "statusCode": 1}))
    assert loaded["created"] is None
    assert [w["field"] for w in warnings] == ["created"] and not warnings[0]["reason"].startswith("Invalid format")


SMPP_ROWS = [
    ("DELIVRD", "delivered"),
    ("ACCEPTD", "pending"),
    ("ENROUTE", "pending"),
    ("UNDELIV", "failed"),
    ("DELETED", "failed"),
    ("EXPIRED", "expired"),
    ("REJECTD", "rejected"),
    ("UNKNOWN", "unknown"),
    ("delivrd", "delivered"),
    ("NEWSTAT", "unknown"),
]


@pytest.mark.parametrize(("stat", "expected"), SMPP_ROWS)
def test_fortytwo_smpp_status_mapping(stat, expected):
    assert fortytwo.smpp_status(stat) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [("10", "pending"), ("11", "pending"), ("21", "pending"), ("22", "delivered"), ("30", "rejected"),
     ("41", "rejected"), ("42", "failed"), ("44", "expired"), ("50", "failed"), ("0", "unknown"), ("99", "unknown"),
     ("delivered", "unknown"), ("", "unknown"), ("9" * 40, "unknown")],  # never a 400: not a number is unknown
)
def test_fortytwo_http_api_status_mapping(code, expected):
    assert fortytwo.http_api_status(code) == expected


def test_fortytwo_tables_cover_the_reference_exactly():
    assert set(fortytwo.SMPP_STATUSES) == {"DELIVRD", "ACCEPTD", "ENROUTE", "UNDELIV", "DELETED", "EXPIRED",
                                           "REJECTD", "UNKNOWN"}
    assert set(fortytwo.HTTP_API_STATUSES) == {10, 11, 21, 22, 30, 41, 42, 44, 50}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("timestamp", 1709633742117, datetime(2024, 3, 5, 10, 15, 42, 117000, tzinfo=UTC)),  # epoch ms
        ("micro_timestamp", 1709633742117345, datetime(2024, 3, 5, 10, 15, 42, 117345, tzinfo=UTC)),  # epoch µs
        ("timestamp", "1709633742", datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)),  # seconds, as text
    ],
)
def test_fortytwo_rest_times(field, value, expected):
    info = fortytwo.CallbackInfoSchema().load({"type": "SMS", "message_id": "1", "status": "DELIVRD", field: value})
    assert info[field] == expected


@pytest.mark.parametrize(("value", "expected"), [("1709633742", datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)),
                                                 ("0", datetime(1970, 1, 1, tzinfo=UTC))])
def test_fortytwo_http_api_unix_time(value, expected):
    loaded = fortytwo.HttpApiReceiptSchema().load({"smsid": "1", "status": "22", "timestamp": value})
    assert loaded["timestamp"] == expected


@pytest.mark.parametrize("value", ["soon", True, "2024-03-05", ""])
def test_fortytwo_bad_times_are_parse_warnings(value):
    loaded, warnings = warnings_of(lambda: fortytwo.HttpApiReceiptSchema().load(
        {"smsid": "1", "status": "22", "timestamp": value}))
    assert loaded["timestamp"] is None and [w["field"] for w in warnings] == ["timestamp"]


JASMIN_ROWS = [
    ("ESME_ROK", "pending"),
    ("ESME_RINVDSTADR", "rejected"),
    ("ESME_RTHROTTLED", "rejected"),
    ("ESME_RSYSERR", "rejected"),
    *SMPP_ROWS,
]


@pytest.mark.parametrize(("message_status", "expected"), JASMIN_ROWS)
def test_jasmin_status_mapping(message_status, expected):
    assert jasmin.receipt_status(message_status) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2403051016", datetime(2024, 3, 5, 10, 16, tzinfo=UTC)),  # YYMMDDhhmm, no zone: UTC
        ("240305101642", datetime(2024, 3, 5, 10, 16, 42, tzinfo=UTC)),  # with seconds
        ("202403051016", datetime(2024, 3, 5, 10, 16, tzinfo=UTC)),  # YYYYMMDDhhmm, as some SMSCs write it
        ("20240305101642", datetime(2024, 3, 5, 10, 16, 42, tzinfo=UTC)),  # YYYYMMDDhhmmss
    ],
)
def test_jasmin_times(value, expected):
    loaded = jasmin.ReceiptSchema().load({"id": "x", "message_status": "DELIVRD", "level": "2",
                                          "subdate": value, "donedate": value})
    assert loaded["subdate"] == loaded["donedate"] == expected


@pytest.mark.parametrize("value", ["2024-03-05", "2413051016", "24030510", "soon"])
def test_jasmin_bad_times_load_as_none_with_a_warning(value):
    noted: list[dict[str, str]] = []
    token = PARSE_WARNINGS.set(noted)
    try:
        loaded = jasmin.ReceiptSchema().load({"id": "x", "message_status": "DELIVRD", "level": "2", "donedate": value})
    finally:
        PARSE_WARNINGS.reset(token)
    assert loaded["donedate"] is None
    assert [w["field"] for w in noted] == ["donedate"] and not noted[0]["reason"].startswith("Invalid format")


@pytest.mark.parametrize(
    ("content", "binary", "coding", "expected"),
    [
        ("STOP", "53544f50", 0, "STOP"),
        ("?", "041f04400438043204350442", 8, "Привет"),  # UCS2: decoded from the exact binary copy
        ("\x05v\x05nement", None, 0, "événement"),  # GSM 03.38 septets, no binary copy (Courier's Jasmin test)
        ("a", "610062", 0, "a@b"),  # GSM @ is byte 0, which the form parser drops from `content`
        ("ARR\xcaT", "415252ca54", 3, "ARRÊT"),  # Latin-1
        ("\x06*\x063\x06*", None, 8, "تست"),  # UCS2 without a binary copy (no NUL bytes to lose)
        ("?", "d8aad8b3d8aa", 8, "تست"),  # UTF-8 bytes declared UCS2 (Jasmin #320): read as UTF-8
        ("é", None, 0, "é"),  # 8-bit text under the default coding: kept as the form parser read it
        ("?", "0102", 4, None),  # octet data: no text, the binary copy stands
        ("plain", None, None, "plain"),  # no coding: SMPP's default, 0
    ],
)
def test_jasmin_inbound_text(content, binary, coding, expected):
    assert jasmin.inbound_text(content, binary, coding) == expected


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [("447700900123", "GB"), ("33612345678", "FR"), ("4915112345678", "DE"), ("972541111111", "IL"),
     ("35312345678", "IE"), ("35812345678", "FI"), ("12025550123", "US"), ("14165550123", "CA"),
     ("79161234567", "RU"), ("77012345678", "KZ"), ("07700900123", None), ("ACME", None), (None, None)],
)
def test_sent_message_country_from_calling_code(recipient, expected):
    assert recipient_country(recipient) == expected


@pytest.mark.parametrize("coding", range(256))
def test_every_data_coding_decodes_any_bytes_or_says_binary(coding):
    for message in (b"", b"\x00\xff", b"\x1b", b"\xd8\x00", bytes(range(256))):
        text = smpp.decode(message, coding)
        assert text is None or isinstance(text, str)
    assert (smpp.decode(b"\x00", coding) is None) == (smpp.alphabet(coding) == smpp.BINARY)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("\x08", 8), ("\x03", 3), ("\xf0", 0xF0), ("\x0a", 10), ("8", 8), ("240", 240), ("UCS2", 8),
     ("latin_1", 3), ("SMSC_DEFAULT_ALPHABET", 0)],
)
def test_data_coding_forms(value, expected):
    assert smpp.parse_data_coding(value) == expected


@pytest.mark.parametrize("value", ["KLINGON", "256", "", "  "])
def test_data_coding_that_is_none_of_the_forms(value):
    with pytest.raises(smpp.DataCodingError):
        smpp.parse_data_coding(value)

"""Unit tests, no broker: Sinch, Twilio and Vonage status tables, code descriptions, and the time formats they use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from marshmallow import Schema, ValidationError

from core.events import RECEIPT_STATUSES, utc_now
from receiver.errors import FORMAT_PREFIX, UnknownAccount, UnknownCallbackType
from receiver.fields import VendorTime
from receiver.times import TimeFormatError, parse_epoch, parse_iso, parse_sql_time, parse_yymmddhhmm
from receiver.vendors import sinch, twilio, vonage
from receiver.vendors.base import CallbackContext

SINCH_ROWS = [
    ("Queued", "pending"), ("Dispatched", "pending"), ("Delivered", "delivered"), ("Failed", "failed"),
    ("Aborted", "failed"), ("Cancelled", "failed"), ("Deleted", "failed"), ("Rejected", "rejected"),
    ("Expired", "expired"), ("Unknown", "unknown"),
]
TWILIO_ROWS = [
    ("delivered", "delivered"), ("read", "delivered"), ("queued", "pending"), ("accepted", "pending"),
    ("scheduled", "pending"), ("sending", "pending"), ("sent", "pending"), ("failed", "failed"),
    ("undelivered", "failed"), ("canceled", "failed"), ("partially_delivered", "unknown"),
]
VONAGE_ROWS = [
    ("accepted", "pending"), ("buffered", "pending"), ("delivered", "delivered"), ("expired", "expired"),
    ("failed", "failed"), ("rejected", "rejected"), ("unknown", "unknown"),
]


def context(vendor: str, kind: str = "delivery-receipts", account_ids: tuple[str, ...] = ()) -> CallbackContext:
    return CallbackContext(vendor=vendor, kind=kind, request_id="req-1", received_at=utc_now(), method="POST",
                           payload_format="json", account_ids=account_ids)


@pytest.mark.parametrize(("vendor_status", "expected"), SINCH_ROWS)
def test_sinch_status_table_in_any_case(vendor_status, expected):
    for spelling in (vendor_status, vendor_status.upper(), vendor_status.lower(), f" {vendor_status} "):
        assert sinch.receipt_status(spelling) == expected


@pytest.mark.parametrize(("vendor_status", "expected"), TWILIO_ROWS)
def test_twilio_status_table(vendor_status, expected):
    assert twilio.receipt_status(vendor_status) == twilio.receipt_status(vendor_status.upper()) == expected


@pytest.mark.parametrize(("vendor_status", "expected"), VONAGE_ROWS)
def test_vonage_status_table(vendor_status, expected):
    assert vonage.receipt_status(vendor_status) == vonage.receipt_status(vendor_status.title()) == expected


@pytest.mark.parametrize("module", [sinch, twilio, vonage])
def test_tables_cover_exactly_the_reference_rows_and_fall_back_to_unknown(module):
    rows = {sinch: SINCH_ROWS, twilio: TWILIO_ROWS, vonage: VONAGE_ROWS}[module]
    assert {name.lower(): status for name, status in rows} == module.STATUSES
    assert set(module.STATUSES.values()) <= RECEIPT_STATUSES
    assert module.receipt_status("never-heard-of-it") == "unknown"


@pytest.mark.parametrize(
    ("vendor_status", "code", "expected"),
    [
        ("Cancelled", "407", "cancelled"),
        ("CANCELLED", "0", "cancelled"),  # the status decides, whatever the code says
        ("Failed", "402", "message unroutable"),
        ("Expired", "406", "internal expiry"),
        ("Rejected", "418", "MMSC unrecognized content"),
        ("Failed", "12345", None),
        ("Delivered", "402", None),  # delivered messages have no failure reason
        ("Queued", "400", None),
    ],
)
def test_sinch_error_descriptions(vendor_status, code, expected):
    assert sinch.error_description(vendor_status, code) == expected


@pytest.mark.parametrize(
    ("vendor_status", "code", "expected"),
    [("canceled", None, "canceled"), ("undelivered", "30005", "unknown destination handset"),
     ("failed", "30007", "message filtered by carrier"),
     ("failed", "21610", "attempt to send to unsubscribed recipient"), ("failed", None, None)],
)
def test_twilio_error_descriptions(vendor_status, code, expected):
    assert twilio.error_description(vendor_status, code) == expected


@pytest.mark.parametrize(("code", "expected"), [("0", None), ("00", None), ("2", "absent subscriber (temporary)"),
                                                 ("011", "unroutable"), ("99", "general error"), ("77", None),
                                                 (None, None)])
def test_vonage_error_descriptions(code, expected):
    assert vonage.error_description(code) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("whatsapp:+14155238886", "14155238886"), ("+44 7700 900123", "447700900123"), ("ACME", "ACME"),
     (None, None)],
)
def test_twilio_channel_prefix_is_dropped(value, expected):
    assert twilio.channel_address(value) == expected


# --- time formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05T10:15:42.117Z", datetime(2024, 3, 5, 10, 15, 42, 117000, tzinfo=UTC)),  # Sinch
        ("2024-06-06T08:17:19.21Z", datetime(2024, 6, 6, 8, 17, 19, 210000, tzinfo=UTC)),  # Sinch, 2-digit fraction
        ("2024-03-05T12:15:42+02:00", datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)),
        ("2024-03-05T12:15:42+0200", datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)),  # offset without a colon
        ("2024-03-05T10:15:42", datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)),  # naive means UTC
    ],
)
def test_iso_times(text, expected):
    assert parse_iso(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2403051015", datetime(2024, 3, 5, 10, 15, tzinfo=UTC)),  # Twilio RawDlrDoneDate, Vonage scts
     ("240305101542", datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)),
     (" 2412312359 ", datetime(2024, 12, 31, 23, 59, tzinfo=UTC)),
     ("202403051015", datetime(2024, 3, 5, 10, 15, tzinfo=UTC)),  # YYYYMMDDhhmm: month 24 cannot be YYMMDD...
     ("20240305101542", datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC))],
)
def test_yymmddhhmm_times(text, expected):
    assert parse_yymmddhhmm(text) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [(datetime(2020, 1, 3, tzinfo=UTC), datetime(2020, 1, 3, 5, 10, 16, tzinfo=UTC)),  # YYMMDDhhmmss
     (datetime(2001, 3, 5, tzinfo=UTC), datetime(2001, 3, 5, 10, 16, tzinfo=UTC))],  # YYYYMMDDhhmm
)
def test_twelve_digits_that_read_both_ways_take_the_reading_nearer_now(now, expected):
    assert parse_yymmddhhmm("200103051016", now=now) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2024-03-05 10:15:42", datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)),  # Vonage message-timestamp
     ("2024-02-29 23:59:59", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
     ("2020-01-01 12:00:00 +0000", datetime(2020, 1, 1, 12, tzinfo=UTC)),  # Vonage API reference, with a zone
     ("2020-01-01 13:00:00+01:00", datetime(2020, 1, 1, 12, tzinfo=UTC)),
     ("2020-01-01 06:30:00.5 -0530", datetime(2020, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)),
     ("2020-01-01T12:00:00Z", datetime(2020, 1, 1, 12, tzinfo=UTC))],
)
def test_sql_times(text, expected):
    assert parse_sql_time(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1709633742, datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)),  # Vonage signing `timestamp`: seconds
     ("1709633742117", datetime(2024, 3, 5, 10, 15, 42, 117000, tzinfo=UTC)),
     (1709633742117000, datetime(2024, 3, 5, 10, 15, 42, 117000, tzinfo=UTC))],
)
def test_epoch_times(value, expected):
    assert parse_epoch(value) == expected


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        (parse_iso, "yesterday"), (parse_iso, "2024-13-05T10:15:42Z"),
        (parse_yymmddhhmm, "2413051015"), (parse_yymmddhhmm, "24030510"), (parse_yymmddhhmm, "2403051015123"),
        (parse_yymmddhhmm, "2024-03-05"), (parse_yymmddhhmm, "20241305101542"), (parse_sql_time, "2024-03-05"),
        (parse_sql_time, "2024-03-05 10:15:42 +00"),
        (parse_sql_time, "2023-02-29 10:00:00"), (parse_epoch, "soon"),
    ],
)
def test_bad_times_raise_time_format_error(parser, text):
    with pytest.raises(TimeFormatError):
        parser(text)


class _Times(Schema):
    scts = VendorTime("yymmddhhmm")
    stamp = VendorTime("sql")


def test_vendor_time_field_reports_a_format_error():
    assert _Times().load({"scts": "2403051015"})["scts"] == datetime(2024, 3, 5, 10, 15, tzinfo=UTC)
    with pytest.raises(ValidationError) as caught:
        _Times().load({"scts": "2024-03-05 10:15:42", "stamp": True})
    assert all(m.startswith(FORMAT_PREFIX) for messages in caught.value.messages.values() for m in messages)


# --- normalizers without the app -----------------------------------------------------------------------------------


def test_sinch_full_and_summary_lines_in_one_report():
    report = {"type": "delivery_report_mms", "batch_id": "01hzx", "total_message_count": 4, "statuses": [
        {"code": 0, "status": "Delivered", "count": 2, "recipients": ["+4477001", "4477002"]},
        {"code": 401, "status": "Dispatched", "count": 2, "recipients": []},
    ]}
    receipts = sinch.receipts(report, context("sinch"))
    assert [(r.message_id, r.recipient, r.count, r.status) for r in receipts] == [
        ("01HZX:4477001", "4477001", None, "delivered"), ("01HZX:4477002", "4477002", None, "delivered"),
        ("01HZX", None, 2, "pending")]
    assert len({r.event_id() for r in receipts}) == 3


def test_sinch_inbound_type_on_the_receipt_endpoint_is_refused_before_validation():
    with pytest.raises(UnknownCallbackType):
        sinch.receipts({"type": "MO_TEXT"}, context("sinch"))
    with pytest.raises(UnknownCallbackType):
        sinch.inbound({"type": "delivery_report_sms"}, context("sinch", "inbound-messages"))


def test_account_checks_raise_unknown_account():
    status = {"MessageSid": "SM1", "MessageStatus": "sent", "AccountSid": "AC2"}
    with pytest.raises(UnknownAccount):
        twilio.receipts(status, context("twilio", account_ids=("AC1",)))
    [receipt] = twilio.receipts(dict(status, AccountSid="AC1"), context("twilio", account_ids=("AC1",)))
    assert receipt.status == "pending"
    dlr = {"msisdn": "447700900123", "to": "Acme", "network-code": "", "messageId": "0A1", "price": "",
           "status": "buffered", "scts": "2403051015", "err-code": "0", "message-timestamp": "2024-03-05 10:15:42"}
    with pytest.raises(UnknownAccount):
        vonage.receipts(dlr, context("vonage", account_ids=("key-1",)))
    receipt = vonage.receipts(dlr, context("vonage"))[0]
    assert (receipt.status, receipt.network, receipt.price) == ("pending", None, None)  # blanks are absent, not ""

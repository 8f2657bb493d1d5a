"""A known set of failed messages, each receipt parsed by its vendor's module from the body the vendor sends.

Bodies: Twilio status callbacks (form parameters of its status callback guide: MessageSid, MessageStatus, ErrorCode,
To, From), Jasmin level-1 receipts (`id`, `message_status` = the SMPP command status, `level`) and level-2 receipts
with the SMSC's `err`, Sinch per-recipient delivery reports (the shape of tests/receiver/test_sinch.py, from Sinch's
API reference). The expected reasons follow from the vendor modules' tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.events import SentMessage
from receiver.vendors import jasmin, sinch, twilio
from receiver.vendors.base import CallbackContext

START = datetime(2026, 5, 4, tzinfo=UTC)
END = datetime(2026, 5, 5, tzinfo=UTC)
AT = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
SINCH_BATCH = "01FC66621XXXXX119Z8PMV1QPQ"


def context(vendor: str, n: int, payload_format: str) -> CallbackContext:
    """The facts of one callback request."""
    return CallbackContext(vendor=vendor, kind="delivery-receipts", request_id=f"r{n}", method="POST",
                           received_at=AT + timedelta(minutes=n), payload_format=payload_format)


def sent(vendor: str, message_id: str, n: int) -> SentMessage:
    """A message sent at AT to a distinct number."""
    return SentMessage(vendor=vendor, message_id=message_id, recipient=f"+4477009{n:05d}", sender="+447700900999",
                       sent_at=AT, received_at=AT + timedelta(seconds=1))


def twilio_failure(n: int, status: str, code: str | None) -> list:
    """A Twilio message and its failed status callback."""
    form = {"MessageSid": f"SMfail{n}", "MessageStatus": status, "To": f"+4477009{n:05d}", "From": "+447700900999"}
    if code is not None:
        form["ErrorCode"] = code
    return [sent("twilio", f"SMfail{n}", n), *twilio.receipts(form, context("twilio", n, "form"))]


def jasmin_failure(n: int, **parameters: str) -> list:
    """A Jasmin message and its receipt."""
    message_id = f"5e1d-{n:04d}"
    receipt = jasmin.receipts({"id": message_id, **parameters}, context("jasmin", n, "query"))
    return [sent("jasmin", message_id, n), *receipt]


def sinch_failure(n: int, status: str, code: int) -> list:
    """A Sinch message and its per-recipient delivery report."""
    recipient = f"+4477009{n:05d}"
    report = {"type": "recipient_delivery_report_sms", "batch_id": SINCH_BATCH, "recipient": recipient,
              "code": code, "status": status, "at": "2026-05-04T09:30:00.000Z"}
    message = sent("sinch", f"{SINCH_BATCH}:{recipient.lstrip('+')}", n)
    return [message, *sinch.recipient_report(report, context("sinch", n, "json"))]


def events() -> list:
    """Twilio: 3 x 30003, one unknown code, one failure without a code, one delivered; Jasmin: 2 refused submits
    (ESME_RINVDSTADR), one UNDELIV with the SMSC's err 012; Sinch: one 402."""
    return [
        *twilio_failure(1, "undelivered", "30003"),
        *twilio_failure(2, "undelivered", "30003"),
        *twilio_failure(3, "failed", "30003"),
        *twilio_failure(4, "undelivered", "39999"),
        *twilio_failure(5, "failed", None),
        *twilio_failure(6, "delivered", None),
        *jasmin_failure(7, message_status="ESME_RINVDSTADR", level="1"),
        *jasmin_failure(8, message_status="ESME_RINVDSTADR", level="1"),
        *jasmin_failure(9, message_status="UNDELIV", level="2", err="012"),
        *sinch_failure(10, "Failed", 402),
    ]


EXPECTED = [
    {"vendor": "jasmin", "failed_messages": 3, "other_messages": 0, "reasons": [
        {"rank": 1, "code": "ESME_RINVDSTADR", "description": "invalid destination address", "statuses": ["rejected"],
         "messages": 2, "share_of_failures": 0.6667},
        {"rank": 2, "code": "012", "description": "unknown code", "statuses": ["failed"], "messages": 1,
         "share_of_failures": 0.3333},
    ]},
    {"vendor": "sinch", "failed_messages": 1, "other_messages": 0, "reasons": [
        {"rank": 1, "code": "402", "description": "message unroutable", "statuses": ["failed"], "messages": 1,
         "share_of_failures": 1.0},
    ]},
    {"vendor": "twilio", "failed_messages": 5, "other_messages": 0, "reasons": [
        {"rank": 1, "code": "30003", "description": "unreachable destination handset", "statuses": ["failed"],
         "messages": 3, "share_of_failures": 0.6},
        {"rank": 2, "code": "39999", "description": "unknown code", "statuses": ["failed"], "messages": 1,
         "share_of_failures": 0.2},
        {"rank": 3, "code": "failed", "description": "no code given", "statuses": ["failed"], "messages": 1,
         "share_of_failures": 0.2},
    ]},
]

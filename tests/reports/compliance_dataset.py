"""A known opt-out dataset, written through the real handlers: every figure of the compliance report by construction.

Numbers (recipients) and what happens to them, with our two senders S1 and S2:
- N1 writes STOP to S1 on Monday 2026-04-06 10:00. S1 texts it one hour later (within the 10-business-day grace) and
  eleven business days later, Tuesday 2026-04-21 10:00 (beyond it); S2 texts it two hours later (a violation only
  when opt-outs are account-wide). A message to N1 before the STOP is fine.
- N2 writes STOP, then START the next day; the message after the START is fine: its opt-out was honoured.
- N3 never wrote STOP, but Twilio refused a message with error 21610 (recipient unsubscribed): a vendor opt-out. S1
  texts it again the next business day (a violation within grace, with the vendor's evidence).
- N4 writes STOP and is never texted again: honoured.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.events import DeliveryReceipt, InboundMessage, SentMessage
from core.settings import Settings, load_settings

START = datetime(2026, 4, 1, tzinfo=UTC)
END = datetime(2026, 5, 1, tzinfo=UTC)
NOW = datetime(2026, 5, 1, tzinfo=UTC)
S1, S2 = "+15550009991", "+15550009992"
N1, N2, N3, N4 = "+15550000001", "+15550000002", "+15550000003", "+15550000004"
STOP_N1 = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)  # a Monday
ELEVEN_BUSINESS_DAYS_LATER = datetime(2026, 4, 21, 10, 0, tzinfo=UTC)  # Tuesday: Apr 7-10, 13-17, 20-21
REFUSED_AT = datetime(2026, 4, 10, 12, 0, 5, tzinfo=UTC)  # a Friday
HOUR = timedelta(hours=1)


def compliance_settings(database_url: str, scope: str = "sender") -> Settings:
    """The default grace (10 business days) and the scope under test."""
    return load_settings(environ={}, overrides={"database_url": database_url, "opt_out_scope": scope,
                                                "api_token": "report-token"})


def sent(message_id: str, recipient: str, sender: str, at: datetime) -> SentMessage:
    """A Twilio message registered a second after it was sent."""
    return SentMessage(vendor="twilio", message_id=message_id, recipient=recipient, sender=sender, sent_at=at,
                       received_at=at + timedelta(seconds=1))


def inbound(text: str, subscriber: str, to: str, at: datetime, n: int) -> InboundMessage:
    """A subscriber's reply to one of our numbers."""
    return InboundMessage(vendor="twilio", message_id=f"SMin{n}", from_=subscriber, to=to, text=text, received_at=at)


def refusal(message_id: str, recipient: str, sender: str, at: datetime) -> DeliveryReceipt:
    """What receiver/vendors/twilio.py makes of a status callback with ErrorCode=21610."""
    return DeliveryReceipt(
        vendor="twilio", message_id=message_id, status="failed", vendor_status="undelivered", received_at=at,
        recipient=recipient.lstrip("+"), sender=sender, vendor_code="21610",
        error_description="attempt to send to unsubscribed recipient", recipient_opted_out=True,
    )


def events() -> list:
    """The dataset in the order the processors see it."""
    return [
        sent("SMn1before", N1, S1, STOP_N1 - 72 * HOUR),
        inbound("STOP", N1, S1, STOP_N1, 1),
        inbound("stop", N1, S1, STOP_N1 + timedelta(minutes=5), 2),  # a repeat: history only, not a new opt-out
        sent("SMn1hour", N1, S1, STOP_N1 + HOUR),
        sent("SMn1other", N1, S2, STOP_N1 + 2 * HOUR),
        sent("SMn1late", N1, S1, ELEVEN_BUSINESS_DAYS_LATER),
        inbound("STOP", N2, S1, datetime(2026, 4, 7, 9, 0, tzinfo=UTC), 3),
        inbound("START", N2, S1, datetime(2026, 4, 8, 9, 0, tzinfo=UTC), 4),
        sent("SMn2after", N2, S1, datetime(2026, 4, 9, 9, 0, tzinfo=UTC)),
        sent("SMn3refused", N3, S1, REFUSED_AT - timedelta(seconds=5)),
        refusal("SMn3refused", N3, S1, REFUSED_AT),
        sent("SMn3again", N3, S1, datetime(2026, 4, 13, 9, 0, tzinfo=UTC)),
        inbound("Unsubscribe", N4, S1, datetime(2026, 4, 14, 16, 0, tzinfo=UTC), 5),
    ]


def violation(message_id, recipient, sender, sent_at, opted_out_at, keyword, source, business_days, within):
    """An expected line of the sent-after-opt-out list."""
    return {
        "vendor": "twilio", "message_id": message_id.lower(), "recipient": recipient.lstrip("+"),
        "sender": sender.lstrip("+"), "sent_at": iso(sent_at), "opted_out_at": iso(opted_out_at),
        "keyword": keyword, "source": source, "seconds_after": (sent_at - opted_out_at).total_seconds(),
        "business_days_after": business_days, "within_grace": within,
    }


def iso(value: datetime) -> str:
    """ISO 8601 with Z."""
    return value.isoformat().replace("+00:00", "Z")


N1_HOUR = violation("SMn1hour", N1, S1, STOP_N1 + HOUR, STOP_N1, "stop", "keyword", 0, True)
N1_OTHER_SENDER = violation("SMn1other", N1, S2, STOP_N1 + 2 * HOUR, STOP_N1, "stop", "keyword", 0, True)
N3_AGAIN = violation("SMn3again", N3, S1, datetime(2026, 4, 13, 9, 0, tzinfo=UTC), REFUSED_AT, "twilio:21610",
                     "vendor", 0, True)
N1_LATE = violation("SMn1late", N1, S1, ELEVEN_BUSINESS_DAYS_LATER, STOP_N1, "stop", "keyword", 11, False)
# per opt_out_scope: the sent-after-opt-out list in sent order
SENT_AFTER = {
    "sender": [N1_HOUR, N3_AGAIN, N1_LATE],
    "account": [N1_HOUR, N1_OTHER_SENDER, N3_AGAIN, N1_LATE],
}

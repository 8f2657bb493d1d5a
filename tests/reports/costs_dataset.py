"""A known priced dataset: costs in two currencies, a three-part message with one failed part, expected prices.

Sent messages go through receiver/sent.py's canonical schema (expected_price, currency, part_ids); receipts are
parsed by the vendor modules from the bodies the vendors send: Twilio status callbacks with Price (negative, as
Twilio writes a charge), PriceUnit and NumSegments (its status callback guide); Vonage SMS API delivery receipts
with messageId, msisdn, to, network-code, price, status, scts, err-code and message-timestamp (the fields its PHP
SDK's DeliveryReceipt requires), one receipt per part, and no currency: the account's, EUR, comes from settings.

Every figure in EXPECTED follows from this construction:
- Twilio (USD; rate card US 0.0079 per segment): T1 delivered 0.0079 (1 segment), T2 delivered 0.0158 (NumSegments
  2), T3 failed 0.0079, T4 delivered 0.0100 but the sender expected 0.0079: four billed, five segments, 0.0416 in
  all, 0.0416 / 3 delivered = 0.013867 each, 0.0079 on the failed one, expected 0.0395, one message differs by 0.0021.
- Vonage (EUR; rate card GB 0.0400 per part): V1 has three parts (0.04 each; the second failed, the third's receipt
  arrives before the send is registered): failed, 0.12; V2 delivered 0.0450 against 0.04 expected; V3 has no
  receipt (missing, not billed). Two billed, four segments, 0.165 in all, all of it per delivered message (V2 only),
  0.12 not delivered, expected 0.16, one message differs by 0.005.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.settings import Settings, load_settings
from receiver.sent import canonical
from receiver.vendors import twilio, vonage
from receiver.vendors.base import CallbackContext

START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 6, 2, tzinfo=UTC)
NOW = datetime(2026, 6, 10, tzinfo=UTC)
AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
V1_PARTS = ("0A0000001A2B3C4D", "0A0000001A2B3C4E", "0A0000001A2B3C4F")


def cost_settings(database_url: str) -> Settings:
    """Rate cards for both vendors; Vonage reports prices in the account's currency, EUR."""
    return load_settings(environ={}, overrides={
        "database_url": database_url, "api_token": "report-token",
        "vendors": {"twilio": {"rates": {"US": "0.0079 USD"}},
                    "vonage": {"currency": "EUR", "rates": {"GB": "0.0400 EUR"}}},
    })


def context(vendor: str, n: int, payload_format: str) -> CallbackContext:
    """One callback request's facts."""
    return CallbackContext(vendor=vendor, kind="delivery-receipts", request_id=f"c{n}", method="POST",
                           received_at=AT + timedelta(minutes=n), payload_format=payload_format)


def sent(vendor: str, message_id: str, recipient: str, **extra) -> list:
    """A canonical registration, as POST /v1/sent-messages takes it."""
    body = {"vendor": vendor, "message_id": message_id, "recipient": recipient, "sent_at": "2026-06-01T09:00:00Z",
            **extra}
    return canonical(body, AT + timedelta(seconds=1))


def twilio_status(n: int, sid: str, status: str, price: str, segments: int = 1) -> list:
    """A Twilio status callback with its price."""
    form = {"MessageSid": sid, "MessageStatus": status, "To": "+12025550100", "From": "+12025550199",
            "Price": price, "PriceUnit": "USD", "NumSegments": str(segments)}
    if status != "delivered":
        form["ErrorCode"] = "30003"
    return twilio.receipts(form, context("twilio", n, "form"))


def vonage_dlr(n: int, message_id: str, status: str, price: str, error: str = "0") -> list:
    """A Vonage SMS API delivery receipt (query parameters)."""
    query = {"messageId": message_id, "msisdn": "447700900123", "to": "AcmeInc", "network-code": "23410",
             "price": price, "status": status, "scts": "2606010901", "err-code": error,
             "message-timestamp": "2026-06-01 09:01:00"}
    return vonage.receipts(query, context("vonage", n, "query"))


def events() -> list:
    """The dataset, in the order the processors see it."""
    return [
        *sent("twilio", "SM00000000000000000000000000000001", "+12025550101"),
        *twilio_status(1, "SM00000000000000000000000000000001", "delivered", "-0.00790"),
        *sent("twilio", "SM00000000000000000000000000000002", "+12025550102"),
        *twilio_status(2, "SM00000000000000000000000000000002", "delivered", "-0.01580", segments=2),
        *sent("twilio", "SM00000000000000000000000000000003", "+12025550103"),
        *twilio_status(3, "SM00000000000000000000000000000003", "undelivered", "-0.00790"),
        *sent("twilio", "SM00000000000000000000000000000004", "+12025550104", expected_price="0.0079",
              currency="USD"),
        *twilio_status(4, "SM00000000000000000000000000000004", "delivered", "-0.01000"),
        *vonage_dlr(5, V1_PARTS[2], "delivered", "0.04000000"),  # before the send is registered: parked
        *sent("vonage", V1_PARTS[0], "+447700900123", parts=3, part_ids=list(V1_PARTS)),
        *vonage_dlr(6, V1_PARTS[0], "delivered", "0.04000000"),
        *vonage_dlr(7, V1_PARTS[1], "failed", "0.04000000", error="6"),
        *sent("vonage", "0A0000002A2B3C4D", "+447700900124"),
        *vonage_dlr(8, "0A0000002A2B3C4D", "delivered", "0.04500000"),
        *sent("vonage", "0A0000003A2B3C4D", "+447700900125"),
    ]


def money_row(currency, billed, segments, total, per_delivered, not_delivered_messages, not_delivered_cost,
              compared, expected, difference, differing, delivered, messages=None):
    """An expected totals row."""
    return {
        "currency": currency, "messages": billed if messages is None else messages, "messages_billed": billed,
        "billed_segments": segments, "delivered_billed": delivered, "messages_not_delivered": not_delivered_messages,
        "compared_messages": compared, "messages_differing": differing, "currency_mismatches": 0,
        "total_cost": total, "cost_not_delivered": not_delivered_cost, "reported_cost_compared": total if compared
        else None, "expected_cost": expected, "cost_per_delivered_message": per_delivered,
        "reported_minus_expected": difference,
    }


TOTALS = [
    money_row(None, 0, 0, None, None, 0, None, 0, None, None, 0, 0, messages=1),  # V3: no price yet
    money_row("EUR", 2, 4, "0.165", "0.165000", 1, "0.12", 2, "0.16", "0.005", 1, 1),
    money_row("USD", 4, 5, "0.0416", "0.013867", 1, "0.0079", 4, "0.0395", "0.0021", 1, 3),
]

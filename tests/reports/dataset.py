"""A known dataset written through the real processors' handlers, and the report figures it must give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.events import DeliveryReceipt, Envelope, InboundMessage, LinkClick, SentMessage
from core.settings import Settings, load_settings
from processors.db import upgrade
from processors.db.engine import make_engine, make_session_factory
from processors.db.uow import UnitOfWork
from processors.domain.aggregates import RELATIVE_ERROR
from processors.handlers.clicks import handle_click
from processors.handlers.opt_outs import handle_inbound_message
from processors.handlers.reconciliation import handle_receipt
from processors.handlers.sent_messages import handle_sent_message
from receiver.vendors import canonical_message_id

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 3, tzinfo=UTC)
NOW = datetime(2026, 3, 4, 18, 0, tzinfo=UTC)
DAY1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY2 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SENDER1, SENDER2 = "+447700900999", "+447700900888"
HANDLERS = {
    "sms.sent_message.v1": handle_sent_message,
    "sms.delivery_receipt.v1": handle_receipt,
    "sms.inbound_message.v1": handle_inbound_message,
    "sms.link_click.v1": handle_click,
}


def report_settings(database_url: str) -> Settings:
    """Twilio keeps the 72 h default; Sinch counts as missing after 24 h; receipts unmatched after 48 h."""
    return load_settings(
        environ={},
        overrides={
            "database_url": database_url,
            "unmatched_receipt_hours": 48,
            "api_token": "report-token",
            "vendors": {"sinch": {"missing_receipt_hours": 24}},
        },
    )


def sent(vendor, message_id, at, sender, campaign, country, n=0):
    """A sent message registered one second after it was sent."""
    return SentMessage(
        vendor=vendor, message_id=message_id, recipient=f"+4477009{n:05d}", sent_at=at,
        received_at=at + timedelta(seconds=1), sender=sender, campaign_id=campaign, country_iso2=country,
    )


def receipt(vendor, message_id, status, at, **extra):
    """A receipt received (by us) at `at`."""
    return DeliveryReceipt(
        vendor=vendor, message_id=message_id, status=status, vendor_status=status.upper(), received_at=at,
        occurred_at=at, **extra,
    )


def inbound(text, from_, to, at, n):
    """An inbound SMS from a subscriber."""
    return InboundMessage(vendor="twilio", message_id=f"SMin{n}", from_=from_, to=to, text=text, received_at=at)


def click(vendor, message_id, at, n):
    """A link click."""
    return LinkClick(vendor=vendor, message_id=message_id, recipient="+447700900001", url=f"https://x.test/{n}",
                     received_at=at, clicked_at=at)


def s(seconds: float) -> timedelta:
    """Seconds."""
    return timedelta(seconds=seconds)


def events() -> list:
    """Every event of the dataset, in the order the processors see them."""
    d1, d2 = DAY1, DAY2
    return [
        # twilio, day 1: delivered 10 s after we registered the send, a duplicate delivered receipt
        sent("twilio", "SMa1", d1, SENDER1, "spring", "GB", 1),
        receipt("twilio", "SMa1", "pending", d1 + s(5)),
        receipt("twilio", "SMA1", "delivered", d1 + s(11)),
        receipt("twilio", "SMa1", "delivered", d1 + s(21)),
        sent("twilio", "SMa2", d1 + s(60), SENDER1, "spring", "GB", 2),
        receipt("twilio", "SMa2", "delivered", d1 + s(60 + 31)),
        sent("twilio", "SMa3", d1 + s(120), SENDER1, "spring", "GB", 3),
        receipt("twilio", "SMa3", "failed", d1 + s(125)),
        # delivered, then a conflicting failed: stays delivered, flagged
        sent("twilio", "SMa4", d1 + s(180), SENDER1, "spring", "GB", 4),
        receipt("twilio", "SMa4", "delivered", d1 + s(180 + 61)),
        receipt("twilio", "SMa4", "failed", d1 + s(300)),
        sent("twilio", "SMa5", d1 + s(240), SENDER1, "spring", "GB", 5),  # no receipt: missing after 72 h
        # twilio, day 2
        sent("twilio", "SMb1", d2, SENDER2, "summer", "US", 6),
        receipt("twilio", "SMb1", "delivered", d2 + s(6)),
        sent("twilio", "SMb2", d2 + s(60), SENDER2, "summer", "US", 7),  # no receipt, not yet missing
        sent("twilio", "SMb3", d2 + s(120), SENDER2, "summer", "US", 8),
        receipt("twilio", "SMb3", "pending", d2 + s(130)),
        # sinch, day 1
        sent("sinch", "BATCH1:447700900011", d1, SENDER1, "spring", "FR", 11),
        receipt("sinch", "batch1:447700900011", "delivered", d1 + s(121)),
        receipt("sinch", "BATCH1:447700900011", "pending", d1 + s(200)),  # late, ignored
        sent("sinch", "BATCH1:447700900012", d1, SENDER1, "spring", "FR", 12),
        receipt("sinch", "BATCH1:447700900012", "expired", d1 + s(3600)),
        sent("sinch", "BATCH1:447700900013", d1, SENDER1, "spring", "FR", 13),
        receipt("sinch", "BATCH1:447700900013", "rejected", d1 + s(2)),
        sent("sinch", "BATCH1:447700900014", d1, SENDER1, "spring", "FR", 14),
        receipt("sinch", "BATCH1:447700900014", "unknown", d1 + s(50)),  # unknown and past 24 h: missing
        # sinch, day 2: one still pending past 24 h (missing); one delivered whose receipt was parked first
        sent("sinch", "BATCH2:447700900015", d2, SENDER2, "summer", "DE", 15),
        receipt("sinch", "BATCH2:447700900015", "pending", d2 + s(9)),
        receipt("sinch", "BATCH2:447700900016", "delivered", d2 + s(3605)),
        sent("sinch", "BATCH2:447700900016", d2 + s(3600), SENDER2, "summer", "DE", 16),
        # unmatched: parked 03-01 (old enough); parked 03-02 20:00 (younger than 48 h); parked outside range
        receipt("sinch", "NOPE1:447700900099", "delivered", datetime(2026, 3, 1, 13, 0, tzinfo=UTC)),
        receipt("twilio", "SMzz", "failed", datetime(2026, 3, 2, 20, 0, tzinfo=UTC)),
        receipt("twilio", "SMold", "failed", datetime(2026, 2, 27, 8, 0, tzinfo=UTC)),
        # outside the range: the day before, and exactly at the end (exclusive)
        sent("twilio", "SMprev", datetime(2026, 2, 28, 23, 59, tzinfo=UTC), SENDER1, "spring", "GB", 20),
        receipt("twilio", "SMprev", "delivered", datetime(2026, 3, 1, 0, 1, tzinfo=UTC)),
        sent("sinch", "BATCH3:447700900017", END, SENDER1, "spring", "FR", 17),
        # clicks: two on SMa2, one on SMb1, one on an unknown message
        click("twilio", "SMa2", d1 + s(500), 1),
        click("twilio", "SMA2", d1 + s(600), 2),
        click("twilio", "SMb1", d2 + s(500), 3),
        click("twilio", "SMnever", d2 + s(500), 4),
        # opt-outs: STOP (counted), repeated STOP (not a change), STOP then START (both counted)
        inbound("STOP", "+447700900123", SENDER1, d1 + s(7200), 1),
        inbound("stop", "+447700900123", SENDER1, d1 + s(7300), 2),
        inbound("Stop.", "+447700900124", SENDER2, d1 + s(7400), 3),
        inbound("START", "+447700900124", SENDER2, d2 + s(7200), 4),
        inbound("STOP", "+447700900125", SENDER1, datetime(2026, 3, 3, 9, 0, tzinfo=UTC), 5),  # after the range
        inbound("HELP", "+447700900126", SENDER1, d1 + s(7500), 6),
    ]


def load(database_url: str) -> Settings:
    """Migrate the database and apply every event through its handler, one committed unit each."""
    return apply(report_settings(database_url), events())


def apply(settings: Settings, payloads: list) -> Settings:
    """Migrate the settings' database and apply the payloads through their handlers, one committed unit each."""
    database_url = settings.database_url
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        for payload in payloads:
            envelope = Envelope.wrap(payload)
            with UnitOfWork(factory, settings, canonical_message_id) as uow:
                HANDLERS[envelope.type](envelope, uow)
                uow.commit()
    finally:
        engine.dispose()
    return settings


def row(**values):
    """An expected report row: zeros and Nones unless given."""
    base = {
        "sent": 0, "delivered": 0, "failed": 0, "expired": 0, "rejected": 0, "unknown": 0, "pending": 0,
        "missing": 0, "unmatched": 0, "conflicts": 0, "final": 0, "delivery_rate": None,
        "time_to_delivery_p50_seconds": None, "time_to_delivery_p95_seconds": None,
        "time_to_delivery_p99_seconds": None, "clicks": 0, "clicked_messages": 0, "click_through_rate": None,
        "opt_outs": 0, "opt_ins": 0,
    }
    base.update(values)
    return base


def percentiles(p50, p95, p99):
    """Expected time-to-delivery percentiles (percentile_cont of the exact delays), within the report's stated
    relative error: it reads them from fine log-scale histogram buckets (processors/domain/aggregates.py)."""
    return {name: pytest.approx(value, rel=RELATIVE_ERROR) for name, value in (
        ("time_to_delivery_p50_seconds", p50), ("time_to_delivery_p95_seconds", p95),
        ("time_to_delivery_p99_seconds", p99))}


# Grouped by vendor, day: every figure worked out by hand from events() above.
BY_VENDOR_DAY = [
    row(vendor="sinch", day="2026-03-01", sent=4, delivered=1, expired=1, rejected=1, unknown=1, missing=1,
        unmatched=1, final=3, delivery_rate=0.3333, **percentiles(120.0, 120.0, 120.0), click_through_rate=0.0),
    row(vendor="sinch", day="2026-03-02", sent=2, delivered=1, missing=1, final=1, delivery_rate=1.0,
        **percentiles(4.0, 4.0, 4.0), click_through_rate=0.0),
    row(vendor="twilio", day="2026-03-01", sent=5, delivered=3, failed=1, missing=1, conflicts=1, final=4,
        delivery_rate=0.75, **percentiles(30.0, 57.0, 59.4), clicks=2, clicked_messages=1,
        click_through_rate=0.2, opt_outs=2),
    row(vendor="twilio", day="2026-03-02", sent=3, delivered=1, pending=2, final=1, delivery_rate=1.0,
        **percentiles(5.0, 5.0, 5.0), clicks=1, clicked_messages=1, click_through_rate=0.3333, opt_ins=1),
]
TOTALS = row(sent=14, delivered=6, failed=1, expired=1, rejected=1, unknown=1, pending=2, missing=3, unmatched=1,
             conflicts=1, final=9, delivery_rate=0.6667, **percentiles(20.0, 105.0, 117.0), clicks=3,
             clicked_messages=2, click_through_rate=0.1429, opt_outs=2, opt_ins=1)

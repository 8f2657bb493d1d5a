"""The opt-out compliance report: messages sent after an opt-out, and how promptly each opt-out was honoured.

A message is "sent after opt-out" when, at its sent time, the latest consent change of its recipient for its sender
(or account-wide, key "*") was an opt-out: a STOP the subscriber wrote or a vendor's refusal that said they opted
out. Grace is counted in business days (Monday to Friday, UTC, no holidays) from the opt-out's receive time.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, or_, select
from sqlalchemy.orm import aliased

from core.settings import Settings
from processors.db.models import OptOutHistory, SentMessage
from processors.domain.consent import ACCOUNT_WIDE
from processors.domain.keywords import OPT_IN, OPT_OUT
from processors.reports.reconciliation import iso

SENT_AFTER_COLUMNS = (
    "vendor", "message_id", "recipient", "sender", "sent_at", "opted_out_at", "keyword", "source", "evidence",
    "opt_out_event_id", "seconds_after", "business_days_after", "within_grace",
)
HONOURED, WITHIN_GRACE, BEYOND_GRACE = "honoured", "within_grace", "beyond_grace"


@dataclass(frozen=True)
class ComplianceRequest:
    """Messages sent in [start, end) and opt-outs received in [start, end); ages up to `now`."""

    start: datetime
    end: datetime
    now: datetime
    grace_business_days: int = 10
    list_limit: int = 1000


def grace_deadline(opted_out_at: datetime, business_days: int) -> datetime:
    """The last instant a message may still be sent: `business_days` weekdays after the opt-out (0: the opt-out)."""
    deadline, remaining = opted_out_at, business_days
    while remaining > 0:
        deadline += timedelta(days=1)
        if deadline.weekday() < 5:  # Saturday and Sunday do not count
            remaining -= 1
    return deadline


def business_days_between(start: datetime, end: datetime) -> int:
    """Whole business days from start to end: the largest n with grace_deadline(start, n) <= end."""
    count, cursor = 0, start + timedelta(days=1)
    while cursor <= end:
        if cursor.weekday() < 5:
            count += 1
        cursor += timedelta(days=1)
    return count


def _pairs(condition):
    """(sent message, opt-out) pairs where the opt-out was the recipient's latest consent change before the send."""
    opt_out = aliased(OptOutHistory, name="opt_out")
    later = aliased(OptOutHistory, name="later_change")
    changed_since = exists().where(
        later.msisdn == opt_out.msisdn,
        later.scope_key == opt_out.scope_key,
        later.changed.is_(True),
        later.action.in_((OPT_OUT, OPT_IN)),
        later.received_at > opt_out.received_at,
        later.received_at < SentMessage.sent_at,
    )
    statement = (
        select(
            SentMessage.id, SentMessage.vendor, SentMessage.message_id, SentMessage.recipient, SentMessage.sender,
            SentMessage.sent_at, opt_out.id.label("opt_out_id"), opt_out.received_at.label("opted_out_at"),
            opt_out.keyword, opt_out.source, opt_out.evidence, opt_out.source_event_id,
        )
        .join(opt_out, and_(
            opt_out.msisdn == SentMessage.recipient,
            # an account-wide opt-out covers every sender; a per-sender one only ours
            or_(opt_out.scope_key == ACCOUNT_WIDE, opt_out.scope_key == SentMessage.sender),
            opt_out.action == OPT_OUT,
            opt_out.changed.is_(True),
            SentMessage.sent_at > opt_out.received_at,
        ))
        .where(~changed_since, condition(opt_out))
        .order_by(SentMessage.sent_at, SentMessage.id, opt_out.received_at)
    )
    return statement


def _seconds(delta: timedelta) -> float:
    """A duration in seconds, to the millisecond."""
    return round(delta.total_seconds(), 3)


def _item(record, grace_business_days: int) -> dict[str, Any]:
    """One line of the sent-after-opt-out list."""
    sent_at, opted_out_at = record.sent_at, record.opted_out_at
    return {
        "vendor": record.vendor, "message_id": record.message_id, "recipient": record.recipient,
        "sender": record.sender, "sent_at": iso(sent_at), "opted_out_at": iso(opted_out_at),
        "keyword": record.keyword, "source": record.source, "evidence": record.evidence,
        "opt_out_event_id": record.source_event_id,
        "seconds_after": _seconds(sent_at - opted_out_at),
        "business_days_after": business_days_between(opted_out_at, sent_at),
        "within_grace": sent_at <= grace_deadline(opted_out_at, grace_business_days),
    }


def sent_after_opt_out(connection: Connection, request: ComplianceRequest) -> list[dict[str, Any]]:
    """Every message sent in range to a number opted out for its sender, once each (the earliest opt-out)."""
    in_range = and_(SentMessage.sent_at >= request.start, SentMessage.sent_at < request.end)
    seen: set[int] = set()
    items = []
    for record in connection.execution_options(yield_per=2000).execute(_pairs(lambda _: in_range)):
        if record.id not in seen:  # both an account-wide and a per-sender opt-out may cover one message
            seen.add(record.id)
            items.append(_item(record, request.grace_business_days))
    return items


def honour_times(connection: Connection, request: ComplianceRequest) -> list[dict[str, Any]]:
    """Each opt-out received in range: the first message after it (up to now), how many, and its outcome."""
    opt_outs = connection.execute(
        select(OptOutHistory)
        .where(
            OptOutHistory.action == OPT_OUT, OptOutHistory.changed.is_(True),
            OptOutHistory.received_at >= request.start, OptOutHistory.received_at < request.end,
        )
        .order_by(OptOutHistory.received_at, OptOutHistory.id)
    ).all()
    after: dict[int, list[datetime]] = {}
    statement = _pairs(lambda opt_out: and_(
        opt_out.received_at >= request.start, opt_out.received_at < request.end, SentMessage.sent_at < request.now,
    ))
    for record in connection.execution_options(yield_per=2000).execute(statement):
        after.setdefault(record.opt_out_id, []).append(record.sent_at)
    rows = []
    for opt_out in opt_outs:
        sent_times = after.get(opt_out.id, [])
        deadline = grace_deadline(opt_out.received_at, request.grace_business_days)
        beyond = sum(1 for at in sent_times if at > deadline)
        outcome = BEYOND_GRACE if beyond else WITHIN_GRACE if sent_times else HONOURED
        first = min(sent_times) if sent_times else None
        rows.append({
            "msisdn": opt_out.msisdn, "scope": opt_out.scope,
            "sender": None if opt_out.scope_key == ACCOUNT_WIDE else opt_out.scope_key,
            "opted_out_at": iso(opt_out.received_at), "keyword": opt_out.keyword, "source": opt_out.source,
            "evidence": opt_out.evidence, "source_event_id": opt_out.source_event_id,
            "grace_deadline": iso(deadline), "first_message_after_at": iso(first),
            "seconds_to_first_message": None if first is None else _seconds(first - opt_out.received_at),
            "messages_after": len(sent_times), "messages_beyond_grace": beyond, "outcome": outcome,
        })
    return rows


def build_compliance_report(connection: Connection, settings: Settings, request: ComplianceRequest) -> dict[str, Any]:
    """The opt-out compliance report as JSON-ready data."""
    items = sent_after_opt_out(connection, request)
    honour = honour_times(connection, request)
    outcomes = [row["outcome"] for row in honour]
    totals = {
        "opt_outs": len(honour),
        "keyword_opt_outs": sum(1 for row in honour if row["source"] == "keyword"),
        "vendor_opt_outs": sum(1 for row in honour if row["source"] == "vendor"),
        "honoured": outcomes.count(HONOURED),
        "violated_within_grace": outcomes.count(WITHIN_GRACE),
        "violated_beyond_grace": outcomes.count(BEYOND_GRACE),
        "sent_after_opt_out": len(items),
        "sent_after_opt_out_within_grace": sum(1 for item in items if item["within_grace"]),
        "sent_after_opt_out_beyond_grace": sum(1 for item in items if not item["within_grace"]),
    }
    return {
        "report": "opt-outs",
        "from": iso(request.start),
        "to": iso(request.end),
        "now": iso(request.now),
        "scope": settings.opt_out_scope,
        "grace_business_days": request.grace_business_days,
        "totals": totals,
        "opt_outs": {"total": len(honour), "limit": request.list_limit, "items": honour[: request.list_limit]},
        "sent_after_opt_out": {"total": len(items), "limit": request.list_limit, "items": items[: request.list_limit]},
    }



def to_csv(report: dict[str, Any]) -> str:
    """The sent-after-opt-out list as CSV: the file a compliance audit asks for."""
    return rows_csv(SENT_AFTER_COLUMNS, report["sent_after_opt_out"]["items"])


def rows_csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """CSV with a header; empty cells for None."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(name) is None else row[name] for name in columns])
    return buffer.getvalue()


OUTCOMES = {HONOURED: "honoured", WITHIN_GRACE: "violated within grace", BEYOND_GRACE: "violated beyond grace"}
TILES = (
    ("opt_outs", "opt-outs received"), ("vendor_opt_outs", "of which vendor refusals"), ("honoured", "honoured"),
    ("violated_within_grace", "violated within grace"), ("violated_beyond_grace", "violated beyond grace"),
    ("sent_after_opt_out", "messages sent after opt-out"),
    ("sent_after_opt_out_beyond_grace", "of which beyond grace"),
)


def to_html(report: dict[str, Any], *, base_url: str = "", csv_url: str | None = None) -> str:
    """One self-contained page: headline figures, the sent-after-opt-out list and the time to honour each opt-out."""
    from markupsafe import Markup

    from processors.reports.html import STYLE
    from processors.reports.templating import message_link, render

    return render(
        "compliance.html", report=report, data=report, style=Markup(STYLE), tiles=TILES, outcomes=OUTCOMES,
        message_url=message_link(base_url), csv_url=csv_url,
    )

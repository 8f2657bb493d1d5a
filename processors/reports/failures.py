"""Why messages failed: per vendor, the top failure reasons by count, with the vendor's code and its meaning.

A failed message is a sent message in range whose final status is failed, expired or rejected; its reason is the
receipt that set that status. The meaning comes from the receipt (the vendor's own text, or its vendor module's
table, filled at the receiver); a code nobody described is shown as "unknown code", never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from processors.db.models import Receipt, SentMessage
from processors.domain import statuses
from processors.reports.reconciliation import iso

NOT_DELIVERED = ("failed", "expired", "rejected")
UNKNOWN_CODE = "unknown code"
NO_CODE = "no code given"
COLUMNS = ("vendor", "rank", "code", "description", "statuses", "messages", "share_of_failures")


@dataclass(frozen=True)
class FailureRequest:
    """Messages sent in [start, end); the `top` reasons per vendor are listed, the rest summed as "other"."""

    start: datetime
    end: datetime
    top: int = 10


def reason(code: str | None, description: str | None, vendor_status: str) -> tuple[str, str]:
    """(code, description) of one failure: the vendor's code (or its status word when it sent no code)."""
    if code:
        return code, description or UNKNOWN_CODE
    return vendor_status, description or NO_CODE


def build_failure_report(connection: Connection, request: FailureRequest) -> dict[str, Any]:
    """Failure reasons per vendor, most frequent first (one grouped scan of the failed messages and their receipt)."""
    statement = (
        select(
            SentMessage.vendor, Receipt.vendor_code, Receipt.error_description, Receipt.vendor_status,
            SentMessage.status, func.count().label("messages"),
        )
        .join(Receipt, and_(
            Receipt.sent_message_id == SentMessage.id,
            Receipt.outcome == statuses.APPLIED,
            Receipt.status == SentMessage.status,  # the receipt that made the message final
        ))
        .where(
            SentMessage.sent_at >= request.start, SentMessage.sent_at < request.end,
            SentMessage.status.in_(NOT_DELIVERED),
        )
        .group_by(SentMessage.vendor, Receipt.vendor_code, Receipt.error_description, Receipt.vendor_status,
                  SentMessage.status)
    )
    grouped: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for vendor, code, description, vendor_status, status, count in connection.execute(statement):
        key = reason(code, description, vendor_status)
        entry = grouped.setdefault(vendor, {}).setdefault(key, {"messages": 0, "statuses": set()})
        entry["messages"] += int(count)
        entry["statuses"].add(status)
    vendors = []
    for vendor in sorted(grouped):
        reasons = sorted(grouped[vendor].items(), key=lambda item: (-item[1]["messages"], item[0]))
        failed = sum(entry["messages"] for _, entry in reasons)
        listed = [
            {"rank": rank, "code": code, "description": description, "statuses": sorted(entry["statuses"]),
             "messages": entry["messages"], "share_of_failures": round(entry["messages"] / failed, 4)}
            for rank, ((code, description), entry) in enumerate(reasons[: request.top], start=1)
        ]
        other = sum(entry["messages"] for _, entry in reasons[request.top:])
        vendors.append({"vendor": vendor, "failed_messages": failed, "reasons": listed, "other_messages": other})
    return {"report": "failures", "from": iso(request.start), "to": iso(request.end), "top": request.top,
            "vendors": vendors}


def to_csv(report: dict[str, Any]) -> str:
    """One line per (vendor, reason), in rank order."""
    from processors.reports.compliance import rows_csv

    rows = [{"vendor": v["vendor"], **r, "statuses": " ".join(r["statuses"])} for v in report["vendors"]
            for r in v["reasons"]]
    return rows_csv(COLUMNS, rows)


def to_html(report: dict[str, Any], *, csv_url: str | None = None) -> str:
    """One self-contained page: a table of reasons per vendor."""
    from markupsafe import Markup

    from processors.reports.html import STYLE
    from processors.reports.templating import render

    return render("failures.html", report=report, style=Markup(STYLE), csv_url=csv_url)

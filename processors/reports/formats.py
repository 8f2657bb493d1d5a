"""JSON and CSV renderings of a reconciliation report."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from processors.reports.reconciliation import METRICS, Report, dimension_columns, iso


def report_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-ready data (the JSON format, also embedded in the HTML page)."""
    request = report.request
    return {
        "report": "reconciliation",
        "from": iso(request.start),
        "to": iso(request.end),
        "now": iso(request.now),
        "group_by": list(request.group_by),
        "settings": report.settings,
        "columns": csv_columns(report),
        "rows": report.rows,
        "totals": report.totals,
        "delivery_rate_by_day": report.delivery_rate_by_day,
        "time_to_delivery_histogram": report.time_to_delivery_histogram,
        "missing_receipts": report.missing_receipts,
        "unmatched_receipts": report.unmatched_receipts,
    }


def to_json(report: Report) -> str:
    """Indented JSON."""
    return json.dumps(report_dict(report), indent=2) + "\n"


def csv_columns(report: Report) -> list[str]:
    """Group columns in the order asked for, then every metric."""
    return [*dimension_columns(report.request.group_by), *METRICS]


def to_csv(report: Report) -> str:
    """One row per group; empty cells where a figure does not apply (no final status, not attributable)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = csv_columns(report)
    writer.writerow(columns)
    for row in report.rows:
        writer.writerow(["" if row.get(name) is None else row[name] for name in columns])
    return buffer.getvalue()

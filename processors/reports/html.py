"""The self-contained HTML report: inline CSS, inline SVG charts and a little inline JS, no network."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from processors.reports import charts
from processors.reports.formats import csv_columns, report_dict
from processors.reports.reconciliation import Report, dimension_columns

MAX_BARS = 40

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#4b5563;margin-bottom:16px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:110px}
.tile b{display:block;font-size:20px}.tile span{color:#6b7280;font-size:12px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px;overflow-x:auto}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f3f4f6;cursor:pointer;position:sticky;top:0}
td.key,th.key{text-align:left}
svg.chart text{fill:#374151;font-family:inherit}svg.chart .strong{font-weight:600}
svg.chart .grid{stroke:#e5e7eb}svg.chart .axis{stroke:#9ca3af}
svg.chart .point:hover,svg.chart .segment:hover,svg.chart .bar:hover{opacity:.7}
.note{color:#6b7280;font-size:12px}
"""

# Sorts tables on header click, and marks the page rendered (tests and people can check data-rendered).
SCRIPT = """
(function(){
  var data = JSON.parse(document.getElementById('report-data').textContent);
  document.querySelectorAll('table.sortable th').forEach(function(th, column){
    th.addEventListener('click', function(){
      var body = th.closest('table').tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var descending = th.dataset.order !== 'desc';
      th.dataset.order = descending ? 'desc' : 'asc';
      rows.sort(function(a, b){
        var x = a.cells[column].dataset.value || a.cells[column].textContent;
        var y = b.cells[column].dataset.value || b.cells[column].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return descending ? -order : order;
      });
      rows.forEach(function(row){ body.appendChild(row); });
    });
  });
  var charts = document.querySelectorAll('svg.chart').length;
  document.body.dataset.charts = String(charts);
  document.body.dataset.rows = String(data.rows.length);
  document.body.dataset.rendered = charts >= 3 ? 'ok' : 'missing-charts';
})();
"""


def to_html(report: Report) -> str:
    """The whole page as one string."""
    data = report_dict(report)
    totals = report.totals
    request = report.request
    group = dimension_columns(request.group_by)
    bars = [("all messages", totals)] + [(_group_label(row, group), row) for row in report.rows[:MAX_BARS]]
    island = json.dumps(data).replace("</", "<\\/")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>smshooks reconciliation report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Reconciliation report</h1>",
        f'<div class="meta">Sent from <b>{data["from"]}</b> to <b>{data["to"]}</b> (end excluded) · ages measured at '
        f'{data["now"]} · grouped by {escape(", ".join(group) or "nothing (totals)")} · missing after '
        f'{_hours(report.settings)} · unmatched after {report.settings["unmatched_receipt_hours"]:g} h</div>',
        _tiles(totals),
        "<h2>Delivery rate over time per vendor</h2>",
        f'<div class="card">{charts.delivery_rate_chart(report.delivery_rate_by_day)}</div>',
        "<h2>Status mix</h2>",
        f'<div class="card">{charts.status_mix_chart(bars)}',
        _note_truncated(len(report.rows), MAX_BARS, "groups"),
        "</div>",
        "<h2>Time to delivery</h2>",
        f'<div class="card">{charts.histogram_chart(report.time_to_delivery_histogram, totals)}'
        '<div class="note">From our receipt of the sent message to our receipt of its first delivered receipt.'
        "</div></div>",
        "<h2>Groups</h2>",
        f'<div class="card">{_groups_table(report)}</div>',
        f"<h2>Missing receipts ({report.missing_receipts['total']})</h2>",
        f'<div class="card">{_list_table(report.missing_receipts, MISSING_COLUMNS)}</div>',
        f"<h2>Unmatched receipts ({report.unmatched_receipts['total']})</h2>",
        f'<div class="card">{_list_table(report.unmatched_receipts, UNMATCHED_COLUMNS)}</div>',
        f'<script type="application/json" id="report-data">{island}</script>',
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


MISSING_COLUMNS = ("vendor", "message_id", "status", "sent_at", "age_hours", "sender", "campaign", "country",
                   "client_ref")
UNMATCHED_COLUMNS = ("vendor", "raw_message_id", "status", "vendor_status", "received_at", "age_hours",
                     "client_ref", "batch_id", "event_id")


def _tiles(totals: dict[str, Any]) -> str:
    """Headline figures."""
    tiles = [
        ("sent", totals["sent"]), ("delivered", totals["delivered"]),
        ("delivery rate", _percent(totals["delivery_rate"])), ("failed", totals["failed"]),
        ("expired", totals["expired"]), ("rejected", totals["rejected"]), ("unknown", totals["unknown"]),
        ("still pending", totals["pending"]), ("missing receipts", totals["missing"]),
        ("unmatched receipts", totals["unmatched"]), ("conflicts", totals["conflicts"]),
        ("p50 to delivery", charts._seconds(totals["time_to_delivery_p50_seconds"])),
        ("p95 to delivery", charts._seconds(totals["time_to_delivery_p95_seconds"])),
        ("p99 to delivery", charts._seconds(totals["time_to_delivery_p99_seconds"])),
        ("clicks", totals["clicks"]), ("click-through", _percent(totals["click_through_rate"])),
        ("opt-outs", totals["opt_outs"]), ("opt-ins", totals["opt_ins"]),
    ]
    cells = "".join(f'<div class="tile" data-figure="{escape(name)}"><b>{escape(str(value))}</b>'
                    f"<span>{escape(name)}</span></div>" for name, value in tiles)
    return f'<div class="tiles">{cells}</div>'


def _groups_table(report: Report) -> str:
    """Every report row with every column (the CSV columns), sortable."""
    columns = csv_columns(report)
    keys = set(dimension_columns(report.request.group_by))
    head = "".join(f'<th class="{"key" if name in keys else ""}">{escape(name)}</th>' for name in columns)
    rows = []
    for row in report.rows:
        cells = "".join(_cell(row.get(name), name in keys) for name in columns)
        rows.append(f"<tr>{cells}</tr>")
    total_cells = "".join(
        _cell("total" if index == 0 and keys else report.totals.get(name), name in keys)
        for index, name in enumerate(columns)
    )
    return (f'<table class="sortable" id="groups"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            f'<tfoot><tr class="totals">{total_cells}</tr></tfoot></table>')


def _list_table(listing: dict[str, Any], columns: tuple[str, ...]) -> str:
    """A listing of missing or unmatched receipts, with how many are not shown."""
    if not listing["items"]:
        return '<div class="note">None.</div>'
    head = "".join(f'<th class="key">{escape(name)}</th>' for name in columns)
    rows = "".join(
        "<tr>" + "".join(_cell(item.get(name), True) for name in columns) + "</tr>" for item in listing["items"]
    )
    note = _note_truncated(listing["total"], len(listing["items"]), "receipts")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}'


def _cell(value: Any, key: bool) -> str:
    """A table cell; empty when the figure does not apply."""
    text = "" if value is None else str(value)
    css = ' class="key"' if key else ""
    return f'<td{css} data-value="{escape(text)}">{escape(text)}</td>'


def _group_label(row: dict[str, Any], group: list[str]) -> str:
    """`twilio · 2026-03-01` for a bar."""
    return " · ".join("(none)" if row.get(name) is None else str(row[name]) for name in group) or "all"


def _note_truncated(total: int, shown: int, what: str) -> str:
    """Say when a listing shows only its first entries."""
    if total <= shown:
        return ""
    return f'<div class="note">Showing the first {shown} of {total} {what}.</div>'


def _percent(value: float | None) -> str:
    """0.6667 → 66.67%."""
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _hours(settings: dict[str, Any]) -> str:
    """72 h (sinch 24 h)."""
    overrides = ", ".join(f"{name} {hours:g} h" for name, hours in settings["missing_receipt_hours_by_vendor"].items())
    return f'{settings["missing_receipt_hours"]:g} h' + (f" ({overrides})" if overrides else "")

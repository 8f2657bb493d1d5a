"""The self-contained HTML report: a Jinja2 template (autoescaped) with inline CSS, SVG charts and a little JS.

No network: the CSV download is a data: URL, so the file works offline; message ids link to the read API's message
lookup under `base_url`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from processors.reports import charts
from processors.reports.formats import csv_columns, report_dict, to_csv
from processors.reports.reconciliation import Report, dimension_columns
from processors.reports.templating import message_link, render

MAX_BARS = 40

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#4b5563;margin-bottom:16px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:110px}
.tile b{display:block;font-size:20px}.tile span{color:#6b7280;font-size:12px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px;overflow-x:auto}
.tile small{display:block;color:#6b7280;font-size:11px}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f3f4f6;cursor:pointer;position:sticky;top:0;white-space:normal;vertical-align:bottom}
td.id{white-space:normal;word-break:break-all}
svg.chart{display:block;width:100%;height:auto}svg.chart .axis-title{fill:#4b5563}
.links a{margin-right:16px}
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
  var hidden = 0;  // cards whose content needs a sideways scroll (tests check there is none at 1280 px)
  document.querySelectorAll('.card').forEach(function(card){ if (card.scrollWidth > card.clientWidth + 1) hidden++; });
  document.body.dataset.overflow = String(hidden);
  document.body.dataset.charts = String(charts);
  document.body.dataset.rows = String(data.rows.length);
  document.body.dataset.rendered = charts >= 3 ? 'ok' : 'missing-charts';
})();
"""



# Human column headers; the JSON and CSV keep the machine names.
LABELS = {
    "vendor": "Vendor", "day": "Day sent", "sender": "Sender", "campaign": "Campaign", "country": "Country",
    "sent": "Sent", "delivered": "Delivered", "failed": "Failed", "expired": "Expired", "rejected": "Rejected",
    "unknown": "Unknown", "pending": "Still pending", "missing": "Missing receipt", "unmatched": "Unmatched receipts",
    "conflicts": "Conflicts", "final": "Final status", "delivery_rate": "Delivery rate",
    "time_to_delivery_p50_seconds": "Time to delivery p50", "time_to_delivery_p95_seconds": "p95",
    "time_to_delivery_p99_seconds": "p99", "clicks": "Clicks", "clicked_messages": "Messages clicked",
    "click_through_rate": "Click-through rate", "opt_outs": "Opt-outs", "opt_ins": "Opt-ins",
    "message_id": "Message", "raw_message_id": "Message (as the vendor wrote it)", "status": "Status",
    "vendor_status": "Vendor status", "sent_at": "Sent at", "received_at": "Received at", "age_hours": "Age (h)",
    "client_ref": "Client reference", "batch_id": "Batch", "event_id": "Event",
}
# The wide report in two tables that fit the page: what happened to the messages, then how fast and what followed.
STATUS_METRICS = ("sent", "delivered", "failed", "expired", "rejected", "unknown", "pending", "missing",
                  "unmatched", "conflicts", "final", "delivery_rate")
TIMING_METRICS = ("delivery_rate", "time_to_delivery_p50_seconds", "time_to_delivery_p95_seconds",
                  "time_to_delivery_p99_seconds", "clicks", "clicked_messages", "click_through_rate", "opt_outs",
                  "opt_ins")
RATES = {"delivery_rate", "click_through_rate"}
DURATIONS = {"time_to_delivery_p50_seconds", "time_to_delivery_p95_seconds", "time_to_delivery_p99_seconds"}
MISSING_COLUMNS = ("vendor", "message_id", "status", "sent_at", "age_hours", "sender", "campaign", "country",
                   "client_ref")
UNMATCHED_COLUMNS = ("vendor", "raw_message_id", "status", "vendor_status", "received_at", "age_hours",
                     "client_ref", "batch_id", "event_id")
TILES = (
    ("sent", "sent"), ("delivered", "delivered"), ("delivery rate", "delivery_rate"), ("failed", "failed"),
    ("expired", "expired"), ("rejected", "rejected"), ("unknown", "unknown"), ("still pending", "pending"),
    ("missing receipts", "missing"), ("unmatched receipts", "unmatched"), ("conflicts", "conflicts"),
    ("p50 to delivery", "time_to_delivery_p50_seconds"), ("p95 to delivery", "time_to_delivery_p95_seconds"),
    ("p99 to delivery", "time_to_delivery_p99_seconds"), ("clicks", "clicks"),
    ("click-through", "click_through_rate"), ("opt-outs", "opt_outs"), ("opt-ins", "opt_ins"),
)


def to_html(report: Report, previous: Report | None = None, *, base_url: str = "") -> str:
    """The whole page; `previous` is the same-length range just before, shown beside each headline figure."""
    data = report_dict(report)
    totals = report.totals
    group = dimension_columns(report.request.group_by)
    bars = [("all messages", totals)] + [(_group_label(row, group), row) for row in report.rows[:MAX_BARS]]
    csv_href = "data:text/csv;charset=utf-8," + quote(to_csv(report))
    name = f"reconciliation_{report.request.start:%Y%m%d}_{report.request.end:%Y%m%d}.csv"
    return render(
        "reconciliation.html",
        data=data, style=Markup(STYLE), script=Markup(SCRIPT), group=group, labels=LABELS,
        meta={"grouped": ", ".join(LABELS[name].lower() for name in group) or "nothing (totals)",
              "missing": _hours(report.settings), "unmatched": f'{report.settings["unmatched_receipt_hours"]:g} h'},
        tiles=[_tile(label, key, totals, previous) for label, key in TILES],
        previous=None if previous is None else {"from": data_range(previous)[0], "to": data_range(previous)[1]},
        charts={
            "rate": Markup(charts.delivery_rate_chart(report.delivery_rate_by_day)),
            "mix": Markup(charts.status_mix_chart(bars)),
            "histogram": Markup(charts.histogram_chart(report.time_to_delivery_histogram, totals)),
        },
        truncated_groups=max(0, len(report.rows) - MAX_BARS), max_bars=MAX_BARS,
        tables=[("groups", "What happened to the messages", [*group, *STATUS_METRICS]),
                ("groups-timing", "How fast, and what followed", [*group, *TIMING_METRICS])],
        rows=report.rows, totals=totals, show=show,
        missing=report.missing_receipts, missing_columns=MISSING_COLUMNS,
        unmatched=report.unmatched_receipts, unmatched_columns=UNMATCHED_COLUMNS,
        message_url=message_link(base_url), csv_href=csv_href, csv_name=name, csv_columns=csv_columns(report),
    )


def data_range(report: Report) -> tuple[str, str]:
    """The report's range as ISO strings."""
    data = report_dict(report)
    return data["from"], data["to"]


def show(name: str, value: Any) -> str:
    """A figure as a person reads it: rates in percent, durations in s/min/h, empty when it does not apply."""
    if value is None:
        return ""
    if name in RATES:
        return f"{value * 100:.2f}%"
    if name in DURATIONS:
        return charts._seconds(value)
    return str(value)


def _tile(label: str, key: str, totals: dict[str, Any], previous: Report | None) -> dict[str, Any]:
    """One headline figure, and the same figure over the period before when given."""
    tile = {"label": label, "value": show(key, totals[key]) or "n/a", "previous": None}
    if previous is not None:
        tile["previous"] = show(key, previous.totals[key]) or "n/a"
    return tile


def _group_label(row: dict[str, Any], group: list[str]) -> str:
    """`twilio · 2026-03-01` for a bar."""
    return " · ".join("(none)" if row.get(name) is None else str(row[name]) for name in group) or "all"


def _hours(settings: dict[str, Any]) -> str:
    """72 h (sinch 24 h)."""
    overrides = ", ".join(f"{name} {hours:g} h" for name, hours in settings["missing_receipt_hours_by_vendor"].items())
    return f'{settings["missing_receipt_hours"]:g} h' + (f" ({overrides})" if overrides else "")

"""Every figure of the reconciliation report, in JSON, CSV and HTML, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from processors.domain.aggregates import RELATIVE_ERROR
from processors.reports import params
from processors.reports.formats import csv_columns, report_dict, to_csv, to_json
from processors.reports.html import LABELS, STATUS_METRICS, TIMING_METRICS, to_html
from processors.reports.reconciliation import ReportRequest, build_report
from tests.reports.dataset import BY_VENDOR_DAY, END, NOW, START, TOTALS, percentiles, row


def run(connect, settings, group_by=("vendor", "day"), limit=1000):
    """Build the report over the dataset's range."""
    with connect(settings) as connection:
        return build_report(connection, settings, ReportRequest(START, END, NOW, tuple(group_by), limit))


def test_json_has_every_figure(loaded, connect):
    document = json.loads(to_json(run(connect, loaded)))
    assert document["from"] == "2026-03-01T00:00:00Z" and document["to"] == "2026-03-03T00:00:00Z"
    assert document["now"] == "2026-03-04T18:00:00Z" and document["group_by"] == ["vendor", "day"]
    assert document["settings"] == {"missing_receipt_hours": 72.0, "missing_receipt_hours_by_vendor": {"sinch": 24.0},
                                    "unmatched_receipt_hours": 48.0}
    assert document["rows"] == BY_VENDOR_DAY
    assert document["totals"] == TOTALS
    assert document["delivery_rate_by_day"] == [
        {"vendor": "sinch", "day": "2026-03-01", "sent": 4, "delivered": 1, "final": 3, "delivery_rate": 0.3333},
        {"vendor": "sinch", "day": "2026-03-02", "sent": 2, "delivered": 1, "final": 1, "delivery_rate": 1.0},
        {"vendor": "twilio", "day": "2026-03-01", "sent": 5, "delivered": 3, "final": 4, "delivery_rate": 0.75},
        {"vendor": "twilio", "day": "2026-03-02", "sent": 3, "delivered": 1, "final": 1, "delivery_rate": 1.0},
    ]
    # delays 4, 5, 10, 30, 60, 120 s: bucket edges are exclusive upper bounds
    assert [(b["bucket"], b["count"]) for b in document["time_to_delivery_histogram"]] == [
        ("<10s", 2), ("10-30s", 1), ("30s-1m", 1), ("1-5m", 2), ("5-15m", 0), ("15m-1h", 0), ("1-6h", 0),
        ("6-24h", 0), (">=24h", 0),
    ]
    missing = document["missing_receipts"]
    assert (missing["total"], missing["limit"]) == (3, 1000)
    assert [(m["vendor"], m["message_id"], m["status"], m["age_hours"]) for m in missing["items"]] == [
        ("sinch", "BATCH1:447700900014", "unknown", 78.0),
        ("twilio", "sma5", "submitted", 77.9),
        ("sinch", "BATCH2:447700900015", "pending", 57.0),
    ]
    unmatched = document["unmatched_receipts"]
    assert unmatched["total"] == 1
    assert [(u["vendor"], u["raw_message_id"], u["status"], u["received_at"]) for u in unmatched["items"]] == [
        ("sinch", "NOPE1:447700900099", "delivered", "2026-03-01T13:00:00Z"),
    ]


def _as_csv_cells(expected_row, columns):
    """Expected cells as text; percentiles stay pytest.approx (compare with _with_percentiles(actual cells))."""
    return ["" if expected_row[name] is None else expected_row[name] if name in PERCENTILE_COLUMNS
            else str(expected_row[name]) for name in columns]


PERCENTILE_COLUMNS = ("time_to_delivery_p50_seconds", "time_to_delivery_p95_seconds", "time_to_delivery_p99_seconds")


def _with_percentiles(rows, columns):
    """Rows of text cells whose percentile cells are read as numbers (they are within the stated error)."""
    return [[float(cell) if name in PERCENTILE_COLUMNS and cell else cell
             for name, cell in zip(columns, cells, strict=True)] for cells in rows]


def _seconds(text):
    """A human duration ("59.4 s", "1.8 min") in seconds."""
    number, unit = text.split()
    return float(number) * {"s": 1, "min": 60, "h": 3600}[unit]


def test_csv_has_every_figure(loaded, connect):
    report = run(connect, loaded)
    lines = list(csv.reader(io.StringIO(to_csv(report))))
    assert lines[0] == [
        "vendor", "day", "sent", "delivered", "failed", "expired", "rejected", "unknown", "pending", "missing",
        "unmatched", "conflicts", "final", "delivery_rate", "time_to_delivery_p50_seconds",
        "time_to_delivery_p95_seconds", "time_to_delivery_p99_seconds", "clicks", "clicked_messages",
        "click_through_rate", "opt_outs", "opt_ins",
    ]
    assert _with_percentiles(lines[1:], lines[0]) == [_as_csv_cells(expected, lines[0]) for expected in BY_VENDOR_DAY]


class TableReader(HTMLParser):
    """Collects the cell texts of every table row, by table id (or position)."""

    def __init__(self):
        super().__init__()
        self.tables: list[tuple[str | None, list[list[str]]]] = []
        self.cell: list[str] | None = None
        self.in_script = False
        self.island = ""
        self.tiles: dict[str, str] = {}
        self.tile: str | None = None
        self.previous: dict[str, str] = {}
        self.previous_tile: str | None = None
        self.headers: dict[str, list[str]] = {}
        self.shown: dict[str, list[list[str]]] = {}
        self.value: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "table":
            self.tables.append((attributes.get("id"), []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self.cell = []
            self.value = attributes.get("data-value")  # the raw figure behind the human one
        elif tag == "script" and attributes.get("id") == "report-data":
            self.in_script = True
        elif tag == "div" and "data-figure" in attributes:
            self.tile = attributes["data-figure"]
        elif tag == "small" and "data-previous" in attributes:
            self.previous_tile = attributes["data-previous"]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            name, rows = self.tables[-1]
            text = "".join(self.cell)
            rows[-1].append(text if self.value is None else self.value)
            if tag == "th":
                self.headers.setdefault(name, []).append(text)
            elif len(rows[-1]) == 1:
                self.shown.setdefault(name, []).append([text])
            else:
                self.shown[name][-1].append(text)
            self.cell = None
        elif tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        if self.in_script:
            self.island += data
        if self.tile is not None:
            self.tiles[self.tile] = data
            self.tile = None
        if self.previous_tile is not None:
            self.previous[self.previous_tile] = data
            self.previous_tile = None


def test_html_has_every_figure(loaded, connect):
    report = run(connect, loaded)
    page = to_html(report)
    reader = TableReader()
    reader.feed(page)
    assert json.loads(reader.island) == report_dict(report)  # the data island carries the whole report
    tables = dict((name or f"table{index}", rows) for index, (name, rows) in enumerate(reader.tables))
    # the wide report is two tables that fit the page, with human headers; each keeps the CSV's raw values
    for table, metrics in (("groups", STATUS_METRICS), ("groups-timing", TIMING_METRICS)):
        columns = ["vendor", "day", *metrics]
        assert reader.headers[table] == [LABELS[name] for name in columns]
        assert _with_percentiles(tables[table][1:-1], columns) == [
            _as_csv_cells(expected, columns) for expected in BY_VENDOR_DAY]
        assert _with_percentiles([tables[table][-1]], columns) == [
            _as_csv_cells(dict(TOTALS, vendor="total", day=None), columns)]
    assert set(STATUS_METRICS) | set(TIMING_METRICS) == set(csv_columns(report)) - {"vendor", "day"}
    assert reader.headers["groups-timing"][3:6] == ["Time to delivery p50", "p95", "p99"]
    assert reader.shown["groups"][0][-1] == "33.33%"  # rates read as percentages
    # percentiles come from histogram buckets: within the stated relative error (and the display's rounding)
    shown = [_seconds(text) for text in reader.shown["groups-timing"][2][3:6]]
    assert shown == [pytest.approx(value, rel=RELATIVE_ERROR + 0.01) for value in (30, 57, 59.4)]
    missing, unmatched = tables["missing"], tables["unmatched"]
    assert [r[1] for r in missing[1:]] == ["BATCH1:447700900014", "sma5", "BATCH2:447700900015"]
    assert [r[1] for r in unmatched[1:]] == ["NOPE1:447700900099"]
    assert '<a href="/v1/messages/twilio/sma5">sma5</a>' in page  # message ids link to the message lookup
    assert '<a href="/v1/messages/sinch/NOPE1%3A447700900099">NOPE1:447700900099</a>' in page
    assert reader.tiles["sent"] == "14" and reader.tiles["delivery rate"] == "66.67%"
    assert reader.tiles["missing receipts"] == "3" and reader.tiles["unmatched receipts"] == "1"
    assert _seconds(reader.tiles["p50 to delivery"]) == pytest.approx(20, rel=RELATIVE_ERROR + 0.01)
    assert _seconds(reader.tiles["p95 to delivery"]) == pytest.approx(105, rel=RELATIVE_ERROR + 0.06)  # "1.8 min"
    assert reader.tiles["click-through"] == "14.29%" and reader.tiles["opt-outs"] == "2"
    assert page.count('<svg class="chart"') == 3
    assert page.count('class="axis-title"') == 5  # both axes of the line chart and the histogram, the bars' x
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page.split('id="report-data"')[0]  # no external resources before the data island


def test_html_csv_download_is_the_csv_report_inline(loaded_sqlite, connect):
    from urllib.parse import unquote

    report = run(connect, loaded_sqlite)
    page = to_html(report)
    start = page.index('href="data:text/csv;charset=utf-8,') + len('href="data:text/csv;charset=utf-8,')
    assert unquote(page[start:page.index('"', start)]) == to_csv(report)
    assert 'download="reconciliation_20260301_20260303.csv"' in page


def test_html_shows_the_period_before_beside_each_headline_figure(loaded_sqlite, connect):
    report = run(connect, loaded_sqlite)
    with connect(loaded_sqlite) as connection:
        previous = build_report(connection, loaded_sqlite, report.request.earlier())
    assert (previous.request.start, previous.request.end) == (START - (END - START), START)
    reader = TableReader()
    reader.feed(to_html(report, previous))
    # 2026-02-27 to 03-01: only SMprev was sent (23:59 on 02-28), delivered two minutes later
    assert reader.previous["sent"] == "period before: 1"
    assert reader.previous["delivery rate"] == "period before: 100.00%"
    assert reader.previous["missing receipts"] == "period before: 0" and len(reader.previous) == len(reader.tiles)


def test_grouped_by_sender_attributes_opt_outs(loaded, connect):
    report = run(connect, loaded, ("sender",))
    assert report.rows == [
        row(sender="447700900888", sent=5, delivered=2, pending=2, missing=1, final=2, delivery_rate=1.0,
            **percentiles(4.5, 4.95, 4.99), clicks=1, clicked_messages=1, click_through_rate=0.2, opt_outs=1,
            opt_ins=1, unmatched=None),
        row(sender="447700900999", sent=9, delivered=4, failed=1, expired=1, rejected=1, unknown=1, missing=2,
            conflicts=1, final=7, delivery_rate=0.5714, **percentiles(45.0, 111.0, 118.2), clicks=2,
            clicked_messages=1, click_through_rate=0.1111, opt_outs=1, unmatched=None),
    ]
    assert report.totals == TOTALS


def test_grouped_by_campaign_and_country(loaded, connect):
    report = run(connect, loaded, ("campaign", "country"))
    by_vendor_day = {(r["vendor"], r["day"]): r for r in BY_VENDOR_DAY}
    expected = []
    for campaign, country, vendor, day in [
        ("spring", "FR", "sinch", "2026-03-01"), ("spring", "GB", "twilio", "2026-03-01"),
        ("summer", "DE", "sinch", "2026-03-02"), ("summer", "US", "twilio", "2026-03-02"),
    ]:
        figures = {k: v for k, v in by_vendor_day[(vendor, day)].items() if k not in ("vendor", "day")}
        # neither unmatched receipts nor opt-outs know a campaign or country: not attributable
        figures.update(campaign=campaign, country=country, unmatched=None, opt_outs=None, opt_ins=None)
        expected.append(figures)
    assert report.rows == expected
    assert report.totals == TOTALS


def test_ungrouped_is_one_total_row_and_lists_are_limited(loaded, connect):
    report = run(connect, loaded, (), limit=1)
    assert report.rows == [TOTALS]
    assert report.missing_receipts["total"] == 3 and len(report.missing_receipts["items"]) == 1
    assert report.unmatched_receipts["total"] == 1 and len(report.unmatched_receipts["items"]) == 1


def test_empty_range(loaded_sqlite, connect):
    settings = loaded_sqlite
    with connect(settings) as connection:
        request = ReportRequest(START - timedelta(days=30), START - timedelta(days=20), NOW, ("vendor",))
        report = build_report(connection, settings, request)
    assert report.rows == []
    assert report.totals == row()
    assert "nothing sent" in to_html(report) or "no sent messages" in to_html(report)


@pytest.mark.parametrize(
    ("value", "kind"),
    [("2026-13-01", "format"), ("yesterday", "format"), ("", "format"), ("2026-03-01T25:00", "format")],
)
def test_bad_times(value, kind):
    with pytest.raises(params.ParameterError) as raised:
        params.parse_time("from", value)
    assert raised.value.kind == kind and raised.value.name == "from"


def test_time_forms():
    assert params.parse_time("from", "2026-03-01") == START
    assert params.parse_time("from", "2026-03-01T00:00:00Z") == START
    assert params.parse_time("from", "2026-03-01T01:00:00+01:00") == START
    assert params.parse_time("from", "2026-03-01T00:00") == START


@pytest.mark.parametrize("value", ["vendor,bogus", "vendor,vendor", "day;vendor"])
def test_bad_group_by(value):
    with pytest.raises(params.ParameterError) as raised:
        params.parse_group_by(value)
    assert raised.value.kind == "constraint"


def test_range_rules():
    with pytest.raises(params.ParameterError) as raised:
        params.parse_range("2026-03-03", "2026-03-01", NOW)
    assert raised.value.kind == "constraint"
    assert params.parse_range(None, None, NOW) == (NOW - timedelta(days=7), NOW)


def test_part_days_from_rows_and_whole_days_from_aggregates_agree(loaded, connect, monkeypatch):
    """A range that does not start at midnight: its part day comes from the rows, its whole day from the aggregates;
    the same report computed from the rows alone (no whole day) is identical."""
    from processors.reports import reconciliation

    request = ReportRequest(START + timedelta(hours=6), END + timedelta(hours=12), NOW, ("vendor", "day"))
    with connect(loaded) as connection:
        mixed = report_dict(build_report(connection, loaded, request))
    monkeypatch.setattr(reconciliation, "_whole_days", lambda request: (request.end, request.end))
    with connect(loaded) as connection:
        rows_only = report_dict(build_report(connection, loaded, request))
    assert mixed == rows_only
    assert {"2026-03-01", "2026-03-02"} <= {row["day"] for row in mixed["rows"]}  # a part day and a whole day
    assert mixed["totals"]["sent"] > 0 and mixed["totals"]["missing"] > 0

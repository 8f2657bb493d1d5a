"""Why messages failed, per vendor, on SQLite and PostgreSQL, through the report, the CLI and the read API.

Fixtures: tests/reports/failures_dataset.py (each receipt parsed by its vendor's module from the body that vendor
sends); the expected reasons are worked out from the vendor modules' sourced tables.
"""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from processors.reports.failures import FailureRequest, build_failure_report
from smshooks.cli import main
from tests.reports import failures_dataset as data
from tests.reports.conftest import AUTH, make_client
from tests.reports.dataset import apply, report_settings


def test_top_reasons_per_vendor_with_code_and_meaning(database_url, connect):
    settings = apply(report_settings(database_url), data.events())
    with connect(settings) as connection:
        report = build_failure_report(connection, FailureRequest(data.START, data.END))
    assert report["vendors"] == data.EXPECTED


def test_top_limits_the_list_and_sums_the_rest(sqlite_url, connect):
    settings = apply(report_settings(sqlite_url), data.events())
    with connect(settings) as connection:
        report = build_failure_report(connection, FailureRequest(data.START, data.END, top=1))
    twilio = report["vendors"][2]
    assert [r["code"] for r in twilio["reasons"]] == ["30003"] and twilio["other_messages"] == 2


def test_cli_and_read_api_in_json_csv_and_html(sqlite_url, monkeypatch):
    settings = apply(report_settings(sqlite_url), data.events())
    monkeypatch.setenv("SMSHOOKS_DATABASE_URL", settings.database_url)
    args = ["report", "failures", "--from", "2026-05-04", "--to", "2026-05-05"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert json.loads(result.stdout)["vendors"] == data.EXPECTED
    result = CliRunner().invoke(main, [*args, "--format", "csv"], catch_exceptions=False)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["vendor"], r["code"], r["description"], r["messages"]) for r in rows][:2] == [
        ("jasmin", "ESME_RINVDSTADR", "invalid destination address", "2"), ("jasmin", "012", "unknown code", "1")]
    client = make_client(settings).test_client()
    query = "/v1/reports/failures?from=2026-05-04&to=2026-05-05"
    assert client.get(query, headers=AUTH).get_json()["vendors"] == data.EXPECTED
    page = client.get(query + "&format=html", headers=AUTH).get_data(as_text=True)
    assert "unreachable destination handset" in page and "60.0 %" in page and "format=csv" in page
    response = client.get(query + "&format=csv", headers=AUTH)
    assert response.mimetype == "text/csv" and "ESME_RINVDSTADR" in response.get_data(as_text=True)
    assert client.get(query + "&top=x", headers=AUTH).status_code == 400

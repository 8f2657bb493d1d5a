"""The read API: every route, its auth (401/503), bad parameters (400) and unknown resources (404)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from processors.reports.formats import to_csv
from processors.reports.reconciliation import ReportRequest, build_report
from smshooks.api import database_ready
from tests.reports.conftest import AUTH, make_client
from tests.reports.dataset import BY_VENDOR_DAY, END, NOW, START, TOTALS, report_settings

REPORT = "/v1/reports/reconciliation?from=2026-03-01&to=2026-03-03&now=2026-03-04T18:00:00Z"


def assert_error(response, status: int, code: str, field: str | None = None):
    """The documented error body: code, text, errors (for 400), request_id."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == code and body["text"] and body["request_id"] == response.headers["X-Request-ID"]
    if field:
        assert field in body["errors"]
    return body


@pytest.mark.parametrize("path", [REPORT, "/v1/messages/twilio/SMa1", "/v1/opt-outs/447700900123?sender=1",
                                  "/v1/opt-outs"])
def test_every_route_needs_the_token(api, path):
    assert_error(api.get(path), 401, "unauthorized")
    response = api.get(path, headers={"Authorization": "Bearer wrong"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(api.get(path, headers={"Authorization": "Basic report-token"}), 401, "unauthorized")


def test_read_api_disabled_without_a_token(sqlite_url):
    from core.settings import load_settings

    app = make_client(load_settings(environ={}, overrides={"database_url": sqlite_url}))
    response = app.test_client().get(REPORT, headers=AUTH)
    assert_error(response, 503, "read_api_disabled")
    assert "smshooks.read_engine" not in app.extensions  # refused before touching the database


def test_report_json_on_both_databases(loaded):
    app = make_client(loaded)
    response = app.test_client().get(REPORT + "&group_by=vendor,day", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["rows"] == BY_VENDOR_DAY and document["totals"] == TOTALS
    app.extensions["smshooks.read_engine"].dispose()


def test_report_csv_and_html(api, loaded_sqlite, connect):
    response = api.get(REPORT + "&group_by=vendor,day&format=csv", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    with connect(loaded_sqlite) as connection:
        expected = build_report(connection, loaded_sqlite, ReportRequest(START, END, NOW, ("vendor", "day")))
    assert response.get_data(as_text=True) == to_csv(expected)
    assert "attachment" in response.headers["Content-Disposition"]
    html = api.get(REPORT + "&group_by=vendor", headers={**AUTH, "Accept": "text/html,*/*;q=0.8"})
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert html.get_data(as_text=True).count('<svg class="chart"') == 3
    by_accept = api.get(REPORT, headers={**AUTH, "Accept": "text/csv"})
    assert by_accept.mimetype == "text/csv"
    assert list(csv.reader(io.StringIO(by_accept.get_data(as_text=True))))[1][0] == "14"


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("from=2026-03-xx", "syntax_invalid_parameter_format", "from"),
        ("from=2026-03-01&to=tomorrow", "syntax_invalid_parameter_format", "to"),
        ("from=2026-03-03&to=2026-03-01", "syntax_constraint_violation", "from"),
        ("group_by=vendor,planet", "syntax_constraint_violation", "group_by"),
        ("group_by=day,day", "syntax_constraint_violation", "group_by"),
        ("format=pdf", "syntax_constraint_violation", "format"),
        ("limit=many", "syntax_invalid_parameter_format", "limit"),
        ("limit=-1", "syntax_constraint_violation", "limit"),
        ("now=soon", "syntax_invalid_parameter_format", "now"),
        ("from=%00%ff", "syntax_invalid_parameter_format", "from"),
        # near datetime's ends the report's own arithmetic (seven days before `to`, ages before `now`) overflowed: 500
        ("to=0001-01-03", "syntax_constraint_violation", "to"),
        ("now=0001-01-01", "syntax_constraint_violation", "now"),
        ("from=0001-01-01T00:00:00%2B01:00", "syntax_constraint_violation", "from"),
        ("to=9999-12-31", "syntax_constraint_violation", "to"),
        ("now=9999-12-31T23:59:59", "syntax_constraint_violation", "now"),
        ("from=1969-12-31&to=2026-03-01", "syntax_constraint_violation", "from"),
    ],
)
def test_report_bad_parameters(api, query, code, field):
    assert_error(api.get(f"/v1/reports/reconciliation?{query}", headers=AUTH), 400, code, field)


def test_message_status_with_conflict(api):
    response = api.get("/v1/messages/twilio/SMA4", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["message_id"], body["status"], body["conflict"], body["matched"]) == ("sma4", "delivered", True, True)
    assert [(r["status"], r["outcome"]) for r in body["receipts"]] == [("delivered", "applied"), ("failed", "conflict")]
    assert [c["status"] for c in body["conflicts"]] == ["failed"]
    assert body["sent_message"]["delivered_at"] == "2026-03-01T12:04:01Z"


def test_message_status_history_and_clicks(api):
    body = api.get("/v1/messages/twilio/SMa1", headers=AUTH).get_json()
    assert [(r["status"], r["outcome"]) for r in body["receipts"]] == [
        ("pending", "applied"), ("delivered", "applied"), ("delivered", "duplicate"),
    ]
    clicks = api.get("/v1/messages/twilio/SMa2", headers=AUTH).get_json()["clicks"]
    assert [c["url"] for c in clicks] == ["https://x.test/1", "https://x.test/2"]
    parked = api.get("/v1/messages/sinch/NOPE1:447700900099", headers=AUTH).get_json()
    assert parked["matched"] is False and parked["status"] is None
    assert [(r["outcome"], r["parked"]) for r in parked["receipts"]] == [("parked", True)]


def test_message_not_found(api):
    assert_error(api.get("/v1/messages/twilio/SMnothing", headers=AUTH), 404, "not_found")
    assert_error(api.get("/v1/messages/nokia/SMa1", headers=AUTH), 404, "not_found")
    assert_error(api.get("/v1/messages/twilio/" + "x" * 300, headers=AUTH), 400, "syntax_constraint_violation")


def test_opt_out_lookup(api):
    body = api.get("/v1/opt-outs/+447700900123?sender=%2B447700900999", headers=AUTH).get_json()
    assert body["opted_out"] is True and body["keyword"] == "stop"
    assert body["changed_at"] == "2026-03-01T14:00:00Z" and body["sender"] == "447700900999"
    assert [(h["action"], h["changed"]) for h in body["history"]] == [("opt_out", False), ("opt_out", True)]
    back_in = api.get("/v1/opt-outs/447700900124?sender=447700900888", headers=AUTH).get_json()
    assert back_in["opted_out"] is False and back_in["keyword"] == "start"
    other_sender = api.get("/v1/opt-outs/447700900123?sender=447700900888", headers=AUTH).get_json()
    assert other_sender["opted_out"] is False and other_sender["changed_at"] is None


def test_opt_out_lookup_bad_parameters(api):
    assert_error(api.get("/v1/opt-outs/447700900123", headers=AUTH), 400, "syntax_constraint_violation", "sender")
    assert_error(api.get("/v1/opt-outs/hello?sender=1", headers=AUTH), 400, "syntax_invalid_parameter_format",
                 "msisdn")
    assert_error(api.get("/v1/opt-outs/123?sender=1", headers=AUTH), 400, "syntax_invalid_parameter_format")
    for since in ("0001-01-01", "9999-12-31T23:59:59Z"):
        assert_error(api.get(f"/v1/opt-outs?since={since}", headers=AUTH), 400, "syntax_constraint_violation",
                     "since")


def test_suppression_list(api):
    response = api.get("/v1/opt-outs", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["msisdn"], r["sender"], r["keyword"]) for r in rows] == [
        ("447700900123", "447700900999", "stop"), ("447700900125", "447700900999", "stop"),
    ]
    since = api.get("/v1/opt-outs?since=2026-03-02&format=json", headers=AUTH)
    assert [r["msisdn"] for r in json.loads(since.get_data(as_text=True))] == ["447700900125"]
    by_accept = api.get("/v1/opt-outs", headers={**AUTH, "Accept": "application/json"})
    assert len(json.loads(by_accept.get_data(as_text=True))) == 2
    assert_error(api.get("/v1/opt-outs?since=later", headers=AUTH), 400, "syntax_invalid_parameter_format", "since")
    assert_error(api.get("/v1/opt-outs?format=html", headers=AUTH), 400, "syntax_constraint_violation", "format")


def test_no_connection_until_first_request_and_readiness(tmp_path):
    settings = report_settings("postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = make_client(settings)
    assert "smshooks.read_engine" not in app.extensions
    assert database_ready(app) is False
    response = app.test_client().get(REPORT, headers=AUTH)
    assert_error(response, 503, "database_unavailable")
    missing_file = make_client(report_settings(f"sqlite:///{tmp_path / 'absent.db'}"))
    assert database_ready(missing_file) is False
    assert not (tmp_path / "absent.db").exists()


def test_readiness_and_openapi(api):
    ready = api.get("/readyz").get_json()
    assert ready["checks"] == {"kafka": True}  # the receiver's readiness is Kafka's alone, not the database's
    paths = api.get("/openapi.json").get_json()["paths"]
    for path in ("/v1/reports/reconciliation", "/v1/messages/{vendor}/{message_id}", "/v1/opt-outs/{msisdn}",
                 "/v1/opt-outs"):
        assert path in paths and "400" in paths[path]["get"]["responses"]

"""The opt-out compliance report, the consent history and vendor refusals as evidence, on SQLite and PostgreSQL.

Fixtures: tests/reports/compliance_dataset.py builds the dataset through the real handlers; every expected figure
follows from its construction. The vendor refusal body is the Twilio status callback recorded by nyaruka/courier
(handlers/twiml/handlers_test.go, statusStop: ErrorCode=21610), parsed by receiver/vendors/twilio.py.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest
from click.testing import CliRunner

from processors.reports.compliance import (
    ComplianceRequest,
    build_compliance_report,
    business_days_between,
    grace_deadline,
)
from receiver.vendors import canonical_message_id
from smshooks.cli import main
from tests.reports import compliance_dataset as data
from tests.reports.conftest import AUTH, make_client
from tests.reports.dataset import apply

RANGE = "from=2026-04-01&to=2026-05-01&now=2026-05-01"
COURIER_STATUS_STOP = (
    "ErrorCode=21610&MessageSid=SMe287d7109a5a925f182f0e07fe5b223b&MessageStatus=failed&To=%2B12028831111"
)


def without_evidence(items):
    """List items without the evidence and event id columns (asserted separately)."""
    return [{k: v for k, v in item.items() if k not in ("evidence", "opt_out_event_id")} for item in items]


def report(connect, settings, grace=10):
    request = ComplianceRequest(start=data.START, end=data.END, now=data.NOW, grace_business_days=grace)
    with connect(settings) as connection:
        return build_compliance_report(connection, settings, request)


@pytest.mark.parametrize("scope", ["sender", "account"])
def test_sent_after_opt_out_lists_every_message_with_its_opt_out(database_url, connect, scope):
    settings = apply(data.compliance_settings(database_url, scope), data.events())
    found = report(connect, settings)
    assert without_evidence(found["sent_after_opt_out"]["items"]) == data.SENT_AFTER[scope]
    vendor_line = next(i for i in found["sent_after_opt_out"]["items"] if i["source"] == "vendor")
    assert "21610" in vendor_line["evidence"] and "unsubscribed" in vendor_line["evidence"]
    within = 3 if scope == "account" else 2
    assert found["totals"] == {
        "opt_outs": 4, "keyword_opt_outs": 3, "vendor_opt_outs": 1, "honoured": 2, "violated_within_grace": 1,
        "violated_beyond_grace": 1, "sent_after_opt_out": within + 1, "sent_after_opt_out_within_grace": within,
        "sent_after_opt_out_beyond_grace": 1,
    }


def test_time_to_honour_each_opt_out(database_url, connect):
    settings = apply(data.compliance_settings(database_url), data.events())
    rows = {row["msisdn"]: row for row in report(connect, settings)["opt_outs"]["items"]}
    n1, n2, n3, n4 = (rows[n.lstrip("+")] for n in (data.N1, data.N2, data.N3, data.N4))
    assert (n1["outcome"], n1["messages_after"], n1["messages_beyond_grace"]) == ("beyond_grace", 2, 1)
    assert n1["first_message_after_at"] == "2026-04-06T11:00:00Z" and n1["seconds_to_first_message"] == 3600.0
    assert n1["grace_deadline"] == "2026-04-20T10:00:00Z"
    assert (n2["outcome"], n2["messages_after"]) == ("honoured", 0)  # the message came after its START
    assert (n3["outcome"], n3["source"], n3["keyword"]) == ("within_grace", "vendor", "twilio:21610")
    assert (n4["outcome"], n4["first_message_after_at"]) == ("honoured", None)


def test_zero_tolerance_makes_every_message_after_an_opt_out_beyond_grace(database_url, connect):
    settings = apply(data.compliance_settings(database_url), data.events())
    found = report(connect, settings, grace=0)
    assert [item["within_grace"] for item in found["sent_after_opt_out"]["items"]] == [False, False, False]
    assert (found["totals"]["violated_within_grace"], found["totals"]["violated_beyond_grace"]) == (0, 2)


def test_business_days_skip_weekends():
    friday = datetime(2026, 4, 10, 17, 0, tzinfo=UTC)
    assert grace_deadline(friday, 1) == datetime(2026, 4, 13, 17, 0, tzinfo=UTC)
    assert grace_deadline(friday, 0) == friday
    assert business_days_between(friday, datetime(2026, 4, 13, 16, 59, tzinfo=UTC)) == 0
    assert business_days_between(friday, datetime(2026, 4, 13, 17, 0, tzinfo=UTC)) == 1
    assert business_days_between(data.STOP_N1, data.ELEVEN_BUSINESS_DAYS_LATER) == 11


def test_a_real_twilio_21610_callback_records_a_vendor_opt_out(sqlite_url, connect):
    from receiver.vendors.base import CallbackContext
    from receiver.vendors.twilio import receipts

    context = CallbackContext(vendor="twilio", kind="delivery-receipts", request_id="r1", method="POST",
                              received_at=datetime(2026, 4, 2, 12, 0, tzinfo=UTC), payload_format="form")
    [receipt] = receipts(dict(parse_qsl(COURIER_STATUS_STOP)), context)
    assert receipt.recipient_opted_out is True
    sent = data.sent("SMe287d7109a5a925f182f0e07fe5b223b", "+12028831111", data.S1,
                     datetime(2026, 4, 2, 11, 59, tzinfo=UTC))
    settings = apply(data.compliance_settings(sqlite_url), [sent, receipt])
    from processors.reports.opt_outs import consent_history, opt_out_status

    with connect(settings) as connection:
        status = opt_out_status(connection, "12028831111", data.S1, "sender")
        [entry] = consent_history(connection, "+12028831111")
    assert status["opted_out"] is True and status["keyword"] == "twilio:21610"
    assert (entry["action"], entry["source"], entry["changed"], entry["text"]) == ("opt_out", "vendor", True, None)
    assert entry["evidence"] == ("twilio refused the message SMe287d7109a5a925f182f0e07fe5b223b: code 21610 "
                                 "(attempt to send to unsubscribed recipient)")


def test_a_keyword_stop_and_a_vendor_refusal_differ_in_the_history(sqlite_url, connect):
    settings = apply(data.compliance_settings(sqlite_url), data.events())
    from processors.reports.opt_outs import consent_history

    with connect(settings) as connection:
        n1 = consent_history(connection, data.N1)
        n3 = consent_history(connection, data.N3)
    assert [(e["action"], e["source"], e["keyword"], e["changed"]) for e in n1] == [
        ("opt_out", "keyword", "stop", True), ("opt_out", "keyword", "stop", False)]
    assert n1[0]["text"] == "STOP" and n1[0]["evidence"] is None
    assert [(e["action"], e["source"], e["vendor"]) for e in n3] == [("opt_out", "vendor", "twilio")]


@pytest.fixture
def compliance_api(sqlite_url):
    app = make_client(apply(data.compliance_settings(sqlite_url), data.events()))
    yield app.test_client()
    engine = app.extensions.get("smshooks.read_engine")
    if engine is not None:
        engine.dispose()


def test_read_api_report_in_json_csv_and_html(compliance_api):
    body = compliance_api.get(f"/v1/reports/opt-outs?{RANGE}", headers=AUTH).get_json()
    assert without_evidence(body["sent_after_opt_out"]["items"]) == data.SENT_AFTER["sender"]
    response = compliance_api.get(f"/v1/reports/opt-outs?{RANGE}&format=csv", headers=AUTH)
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["message_id"], r["business_days_after"], r["within_grace"]) for r in rows] == [
        ("smn1hour", "0", "True"), ("smn3again", "0", "True"), ("smn1late", "11", "False")]
    page = compliance_api.get(f"/v1/reports/opt-outs?{RANGE}&format=html&grace_days=0", headers=AUTH)
    html = page.get_data(as_text=True)
    assert page.mimetype == "text/html" and "zero tolerance" in html
    assert 'href="/v1/messages/twilio/smn1late"' in html and "format=csv" in html


def test_read_api_refuses_a_bad_grace(compliance_api):
    response = compliance_api.get(f"/v1/reports/opt-outs?{RANGE}&grace_days=-1", headers=AUTH)
    assert response.status_code == 400 and "grace_days" in response.get_json()["errors"]


def test_read_api_consent_history_json_and_csv(compliance_api):
    body = compliance_api.get("/v1/opt-outs/+15550000002/history", headers=AUTH).get_json()
    assert [(e["action"], e["keyword"], e["changed"]) for e in body["history"]] == [
        ("opt_out", "stop", True), ("opt_in", "start", True)]
    response = compliance_api.get("/v1/opt-outs/15550000003/history?format=csv", headers=AUTH)
    [row] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert (row["source"], row["vendor"]) == ("vendor", "twilio") and "21610" in row["evidence"]
    assert compliance_api.get("/v1/opt-outs/12/history", headers=AUTH).status_code == 400


def test_cli_report_and_history(sqlite_url, tmp_path, monkeypatch):
    settings = apply(data.compliance_settings(sqlite_url), data.events())
    monkeypatch.setenv("SMSHOOKS_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    args = ["report", "opt-outs", "--from", "2026-04-01", "--to", "2026-05-01", "--now", "2026-05-01"]
    result = runner.invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["sent_after_opt_out_beyond_grace"] == 1
    target = tmp_path / "violations.csv"
    assert runner.invoke(main, [*args, "--format", "csv", "-o", str(target)]).exit_code == 0
    assert [r["message_id"] for r in csv.DictReader(target.open())] == ["smn1hour", "smn3again", "smn1late"]
    page = tmp_path / "compliance.html"
    assert runner.invoke(main, [*args, "--grace-days", "0", "--format", "html", "-o", str(page)]).exit_code == 0
    assert "violated beyond grace" in page.read_text()
    result = runner.invoke(main, ["opt-outs", "history", data.N1, "--format", "csv"], catch_exceptions=False)
    assert [r["keyword"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["stop", "stop"]


def test_two_refusals_for_one_number_in_one_batch(sqlite_url, connect):
    """One unit of work, as a consumer batch: the second refusal is history only, not a second consent row."""
    from core.events import Envelope
    from processors.db.engine import make_engine, make_session_factory
    from processors.db.uow import UnitOfWork
    from processors.handlers.reconciliation import handle_receipt
    from processors.reports.opt_outs import consent_history

    settings = apply(data.compliance_settings(sqlite_url), [])
    engine = make_engine(sqlite_url)
    try:
        with UnitOfWork(make_session_factory(engine), settings, canonical_message_id) as uow:
            for n in (1, 2):
                handle_receipt(Envelope.wrap(data.refusal(f"SMx{n}", data.N3, data.S1, data.REFUSED_AT)), uow)
            uow.commit()
    finally:
        engine.dispose()
    with connect(settings) as connection:
        history = consent_history(connection, data.N3)
    assert [(entry["source"], entry["changed"]) for entry in history] == [("vendor", True), ("vendor", False)]

"""`smshooks report reconciliation` and `smshooks opt-outs export` against the dataset."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from smshooks.cli import main
from tests.reports.dataset import BY_VENDOR_DAY, TOTALS

RANGE = ["--from", "2026-03-01", "--to", "2026-03-03", "--now", "2026-03-04T18:00:00Z"]


@pytest.fixture
def cli(loaded_sqlite, tmp_path, monkeypatch):
    """Run the CLI with the dataset's settings (from a TOML file, as an operator would)."""
    config = tmp_path / "smshooks.toml"
    config.write_text(f'database_url = "{loaded_sqlite.database_url}"\nunmatched_receipt_hours = 48\n'
                      "[vendors.sinch]\nmissing_receipt_hours = 24\n")
    monkeypatch.setenv("SMSHOOKS_CONFIG", str(config))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


def test_report_json_to_stdout(cli):
    result = cli("report", "reconciliation", *RANGE, "--group-by", "vendor,day")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["rows"] == BY_VENDOR_DAY and document["totals"] == TOTALS


def test_report_csv_and_html_to_files(cli, tmp_path):
    target = tmp_path / "report.csv"
    result = cli("report", "reconciliation", *RANGE, "--group-by", "vendor,day", "--format", "csv",
                 "--output", str(target))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(r["vendor"], r["day"], r["sent"], r["delivery_rate"]) for r in rows] == [
        ("sinch", "2026-03-01", "4", "0.3333"), ("sinch", "2026-03-02", "2", "1.0"),
        ("twilio", "2026-03-01", "5", "0.75"), ("twilio", "2026-03-02", "3", "1.0"),
    ]
    page = tmp_path / "report.html"
    assert cli("report", "reconciliation", *RANGE, "--format", "html", "-o", str(page)).exit_code == 0
    assert page.read_text().count('<svg class="chart"') == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-02-30"], "--from"),
        (["--from", "2026-03-02", "--to", "2026-03-01"], "earlier than 'to'"),
        (["--group-by", "vendor,galaxy"], "unknown dimension 'galaxy'"),
        (["--format", "pdf"], "pdf"),
    ],
)
def test_report_bad_arguments(cli, args, message):
    result = cli("report", "reconciliation", *args)
    assert result.exit_code == 2 and message in result.output


def test_report_help_has_examples(cli):
    result = cli("report", "reconciliation", "--help")
    assert result.exit_code == 0 and "--group-by vendor,day" in result.output and "Examples" in result.output


def test_missing_database_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SMSHOOKS_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    result = CliRunner().invoke(main, ["report", "reconciliation"])
    assert result.exit_code == 1 and "no database at" in result.output


def test_opt_outs_export(cli, tmp_path):
    result = cli("opt-outs", "export")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["msisdn"] for r in rows] == ["447700900123", "447700900125"]
    assert set(rows[0]) == {"msisdn", "scope", "sender", "opted_out_at", "keyword", "source_event_id"}
    target = tmp_path / "suppression.json"
    assert cli("opt-outs", "export", "--since", "2026-03-02", "--format", "json", "-o", str(target)).exit_code == 0
    assert [r["msisdn"] for r in json.loads(target.read_text())] == ["447700900125"]
    bad = cli("opt-outs", "export", "--since", "someday")
    assert bad.exit_code == 2 and "--since" in bad.output


def test_message_lookup_answers_like_the_read_api(cli):
    body = json.loads(cli("message", "twilio", "SMa1").stdout)
    assert [(r["status"], r["outcome"]) for r in body["receipts"]] == [
        ("pending", "applied"), ("delivered", "applied"), ("delivered", "duplicate"),
    ]
    missing = cli("message", "twilio", "SMnothing")
    assert missing.exit_code == 1 and "no sent message or receipt" in missing.output
    assert cli("message", "nokia", "SMa1").exit_code == 2


def test_opt_out_lookup_for_one_number_and_sender(cli):
    body = json.loads(cli("opt-outs", "show", "+447700900123", "--sender", "+447700900999").stdout)
    assert body["opted_out"] is True and body["keyword"] == "stop" and body["changed_at"] == "2026-03-01T14:00:00Z"
    other = json.loads(cli("opt-outs", "show", "447700900123", "--sender", "447700900888").stdout)
    assert other["opted_out"] is False
    no_sender = cli("opt-outs", "show", "447700900123")
    assert no_sender.exit_code == 2 and "--sender" in no_sender.output
    assert cli("opt-outs", "show", "hello", "--sender", "1").exit_code == 2

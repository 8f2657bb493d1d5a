"""Money: reported and expected costs per currency, and multipart messages, on SQLite and PostgreSQL.

Fixtures: tests/reports/costs_dataset.py (vendor bodies parsed by the vendor modules, sent messages through the
canonical schema of POST /v1/sent-messages); every expected figure is worked out there by hand.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from marshmallow import ValidationError
from sqlalchemy import select

from processors.db.models import MessagePart, SentMessage
from processors.domain.statuses import from_parts
from processors.reports.costs import CostRequest, build_cost_report
from receiver.sent import canonical
from receiver.vendors import canonical_message_id
from smshooks.cli import main
from tests.reports import costs_dataset as data
from tests.reports.conftest import AUTH, make_client
from tests.reports.dataset import apply


def report(connect, settings, group_by=()):
    with connect(settings) as connection:
        return build_cost_report(connection, settings, CostRequest(data.START, data.END, data.NOW, group_by))


def test_totals_per_currency_never_mixed(database_url, connect):
    settings = apply(data.cost_settings(database_url), data.events())
    found = report(connect, settings)
    assert found["totals"] == data.TOTALS
    assert [(item["vendor"], item["reported"], item["expected"], item["difference"])
            for item in found["differing_messages"]["items"]] == [
        ("vonage", "0.045", "0.04", "0.005"), ("twilio", "0.01", "0.0079", "0.0021")]


def test_grouped_by_vendor_each_row_is_one_currency(database_url, connect):
    settings = apply(data.cost_settings(database_url), data.events())
    rows = report(connect, settings, ("vendor",))["rows"]
    assert [(row["vendor"], row["currency"], row["total_cost"]) for row in rows] == [
        ("twilio", "USD", "0.0416"), ("vonage", None, None), ("vonage", "EUR", "0.165")]


def test_a_three_part_message_with_one_failed_part_is_failed_and_billed_per_part(database_url, connect):
    settings = apply(data.cost_settings(database_url), data.events())
    with connect(settings) as connection:
        message = connection.execute(select(SentMessage).where(SentMessage.vendor == "vonage",
                                                               SentMessage.message_id == "0a0000001a2b3c4d")).one()
        parts = connection.execute(select(MessagePart.part_index, MessagePart.status)
                                   .order_by(MessagePart.part_index)).all()
    assert (message.status, message.parts, message.price_nanos, message.price_currency) == (
        "failed", 3, 120_000_000, "EUR")
    assert [tuple(part) for part in parts] == [(1, "delivered"), (2, "failed"), (3, "delivered")]
    from processors.reports.messages import message_status

    with connect(settings) as connection:
        lookup = message_status(connection, "vonage", canonical_message_id("vonage", data.V1_PARTS[0]))["sent_message"]
    assert (lookup["price"], lookup["currency"], lookup["expected_price"]) == ("0.12", "EUR", None)
    assert [(p["part"], p["status"], p["price"]) for p in lookup["part_statuses"]] == [
        (1, "delivered", "0.04"), (2, "failed", "0.04"), (3, "delivered", "0.04")]


@pytest.mark.parametrize(("parts", "status"), [
    (["delivered", "delivered", "delivered"], "delivered"),
    (["delivered", "failed", "submitted"], "failed"),  # failed as soon as one part is final and not delivered
    (["delivered", "submitted", "submitted"], "pending"),  # a delivered part is news, not yet a delivery
    (["submitted", "submitted"], "submitted"),
    (["pending", "expired", "rejected"], "expired"),  # the first failing part's status
    (["delivered", "unknown"], "unknown"),
])
def test_multipart_status_rule(parts, status):
    assert from_parts(parts) == status


def test_expected_price_needs_its_currency():
    body = {"vendor": "twilio", "message_id": "SM1", "recipient": "+12025550101", "expected_price": "0.0079"}
    with pytest.raises(ValidationError) as error:
        canonical(body, data.AT)
    assert "currency" in error.value.messages
    with pytest.raises(ValidationError):
        canonical({**body, "currency": "USD", "expected_price": "-1"}, data.AT)


def test_cli_and_read_api_in_json_csv_and_html(sqlite_url, monkeypatch, tmp_path):
    settings = apply(data.cost_settings(sqlite_url), data.events())
    config = tmp_path / "smshooks.toml"
    config.write_text(f'database_url = "{settings.database_url}"\n[vendors.twilio]\nrates = {{US = "0.0079 USD"}}\n'
                      '[vendors.vonage]\ncurrency = "EUR"\nrates = {GB = "0.0400 EUR"}\n')
    monkeypatch.setenv("SMSHOOKS_CONFIG", str(config))
    args = ["report", "costs", "--from", "2026-06-01", "--to", "2026-06-02", "--now", "2026-06-10"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert json.loads(result.stdout)["totals"] == data.TOTALS
    result = CliRunner().invoke(main, [*args, "--group-by", "vendor", "--format", "csv"], catch_exceptions=False)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["vendor"], r["currency"], r["messages_billed"], r["reported_minus_expected"]) for r in rows] == [
        ("twilio", "USD", "4", "0.0021"), ("vonage", "", "0", ""), ("vonage", "EUR", "2", "0.005")]
    client = make_client(settings).test_client()
    query = "/v1/reports/costs?from=2026-06-01&to=2026-06-02&now=2026-06-10&group_by=vendor"
    assert client.get(query, headers=AUTH).get_json()["totals"] == data.TOTALS
    page = client.get(query + "&format=html", headers=AUTH).get_data(as_text=True)
    assert "Cost per delivered message" in page and "0.013867" in page and "format=csv" in page
    assert 'href="/v1/messages/vonage/0a0000002a2b3c4d"' in page
    assert client.get(query.replace("group_by=vendor", "group_by=planet"), headers=AUTH).status_code == 400

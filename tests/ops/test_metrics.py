"""Receiver /metrics after real callbacks through the broker (default registry, one process)."""

from __future__ import annotations

import pytest

from tests.ops.conftest import value

RECEIPT = {"message_id": "m-1", "status": "delivered", "recipient": "+447700900123"}


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def test_callbacks_by_vendor_kind_and_status(client):
    labels = {"vendor": "generic", "kind": "delivery-receipts"}
    before = scrape(client)
    assert client.post("/v1/callbacks/generic/delivery-receipts", json=[RECEIPT, dict(RECEIPT, message_id="m-2")]
                       ).status_code == 200
    after = scrape(client)
    assert value(after, "smshooks_callbacks_total", status="200", **labels) == value(
        before, "smshooks_callbacks_total", status="200", **labels) + 1
    assert value(after, "smshooks_callback_events_total", **labels) == value(
        before, "smshooks_callback_events_total", **labels) + 2
    assert value(after, "smshooks_publish_duration_seconds_count", outcome="ok") > value(
        before, "smshooks_publish_duration_seconds_count", outcome="ok")
    assert value(after, "smshooks_callback_duration_seconds_count", **labels) == value(
        before, "smshooks_callback_duration_seconds_count", **labels) + 1


def test_validation_failures_and_rejections_by_code(client):
    labels = {"vendor": "generic", "kind": "delivery-receipts"}
    before = scrape(client)
    response = client.post("/v1/callbacks/generic/delivery-receipts", data=b"{not json",
                           content_type="application/json")
    assert response.status_code == 400
    after = scrape(client)
    code = {"code": "syntax_invalid_json"}
    assert value(after, "smshooks_validation_failures_total", **labels, **code) == value(
        before, "smshooks_validation_failures_total", **labels, **code) + 1
    assert value(after, "smshooks_callbacks_rejected_total", **labels, **code) == value(
        before, "smshooks_callbacks_rejected_total", **labels, **code) + 1
    assert value(after, "smshooks_callbacks_total", status="400", **labels) == value(
        before, "smshooks_callbacks_total", status="400", **labels) + 1


def test_unknown_vendor_does_not_create_a_series(client):
    assert client.post("/v1/callbacks/scanner-1234/whatever", json={}).status_code == 404
    text = scrape(client)
    assert "scanner-1234" not in text and "whatever" not in text
    assert value(text, "smshooks_callbacks_total", vendor="unknown", kind="unknown", status="404") >= 1


def test_asyncapi_is_served(client):
    response = client.get("/asyncapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert b"asyncapi: 3.0.0" in response.data


def test_content_type_has_one_charset(client):
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.count("charset") == 1, content_type


def test_metrics_token_guards_the_exposition(make_client):
    guarded = make_client(metrics_token="scrape-me")
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = guarded.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert response.status_code == 200 and "smshooks_callbacks_total" in response.get_data(as_text=True)
    assert guarded.get("/healthz").status_code == 200  # probes stay open

"""The OpenAPI document: read API answers described by schemas that match the real answers, every route
present, servers set, and an offline interactive page. Answers come from tests/reports/dataset.py's data."""

from __future__ import annotations

import json

from tests.reports.conftest import AUTH, api, loaded_sqlite  # noqa: F401 - fixtures reused here


def properties(document: dict, name: str) -> set[str]:
    return set(document["components"]["schemas"][name]["properties"])


def test_read_api_answers_are_described_by_their_schemas(api):  # noqa: F811
    document = api.get("/openapi.json").get_json()
    paths = document["paths"]

    def response_schema(path: str, media: str = "application/json") -> dict:
        return paths[path]["get"]["responses"]["200"]["content"][media]["schema"]

    assert response_schema("/v1/messages/{vendor}/{message_id}") == {"$ref": "#/components/schemas/MessageView"}
    message = api.get("/v1/messages/twilio/SMa1", headers=AUTH).get_json()
    assert set(message) == properties(document, "MessageView")
    assert set(message["sent_message"]) == properties(document, "SentMessageView")
    assert set(message["receipts"][0]) == properties(document, "ReceiptView")
    clicks = api.get("/v1/messages/twilio/SMa2", headers=AUTH).get_json()["clicks"]
    assert set(clicks[0]) == properties(document, "ClickView")

    assert response_schema("/v1/opt-outs/{msisdn}") == {"$ref": "#/components/schemas/OptOutView"}
    opt_out = api.get("/v1/opt-outs/447700900123?sender=447700900999", headers=AUTH).get_json()
    assert set(opt_out) == properties(document, "OptOutView")
    assert set(opt_out["history"][0]) == properties(document, "OptOutHistoryView")

    rows = json.loads(api.get("/v1/opt-outs?format=json", headers=AUTH).get_data(as_text=True))
    assert response_schema("/v1/opt-outs")["items"] == {"$ref": "#/components/schemas/SuppressionRowView"}
    assert set(rows[0]) == properties(document, "SuppressionRowView")

    report = api.get("/v1/reports/reconciliation?format=json", headers=AUTH).get_json()
    assert response_schema("/v1/reports/reconciliation") == {"$ref": "#/components/schemas/ReportView"}
    assert set(report) == properties(document, "ReportView")


def test_token_paths_metrics_and_servers_are_documented(api):  # noqa: F811
    document = api.get("/openapi.json").get_json()
    paths = document["paths"]
    assert "/metrics" in paths and "/readyz" in paths
    token_path = paths["/v1/callbacks/mobivate/delivery-receipts/{token}"]["post"]
    in_path = [(p["name"], p["required"]) for p in token_path["parameters"] if p["in"] == "path"]
    assert in_path == [("token", True)]
    for path in [p for p in paths if p.startswith("/v1/callbacks/")]:
        assert path.endswith("/{token}") or path + "/{token}" in paths, path
    assert document["servers"] == [{"url": "/"}]


def test_interactive_page_is_served_offline(api):  # noqa: F811
    page = api.get("/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html and "swagger-ui-bundle.js" in html
    assert "https://" not in html.split("<body", 1)[0] and "cdn" not in html.lower()
    assert api.get("/docs/swagger-ui-bundle.js").status_code == 200

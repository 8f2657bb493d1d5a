"""`GET /openapi.json`: the OpenAPI 3 document, generated from the adapters' marshmallow schemas."""

from __future__ import annotations

from collections.abc import Callable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify
from flask_swagger_ui import get_swaggerui_blueprint
from marshmallow import Schema, fields

bp = Blueprint("openapi", __name__)
# Swagger UI's own files, shipped by flask-swagger-ui: the page works offline, nothing from a CDN
bp.register_blueprint(get_swaggerui_blueprint("/docs", "/openapi.json", config={"app_name": "smshooks API"}))

ERROR_STATUSES = {
    "400": "Invalid JSON, a field of the wrong format, or a broken constraint",
    "401": "Credentials missing or wrong, bad or stale signature, address not allowed",
    "403": "Unknown callback type for this endpoint, or an account we are not configured for",
    "404": "Unknown vendor, kind or path",
    "405": "Method not allowed on this path (see Allow)",
    "413": "Body larger than the configured limit (32,768 bytes by default)",
    "415": "Content type this vendor's adapter does not take",
    "429": "Rate limit exceeded (see Retry-After)",
    "500": "A bug; never for bad input",
    "503": "Kafka did not acknowledge in time (see Retry-After)",
}


class ErrorBody(Schema):
    """The error body of every non-200 answer."""

    code = fields.String(required=True, metadata={"example": "syntax_constraint_violation"})
    text = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.Raw(), metadata={"description": "per-field messages"})
    request_id = fields.String(required=True)


class Accepted(Schema):
    """The 200 answer: every event is on Kafka."""

    status = fields.String(required=True, metadata={"example": "accepted"})
    request_id = fields.String(required=True)
    event_ids = fields.List(fields.String(), required=True)


def error_responses(*statuses: str) -> dict:
    """OpenAPI responses for the given error statuses."""
    return {
        status: {"description": ERROR_STATUSES[status], "content": {"application/json": {"schema": "ErrorBody"}}}
        for status in statuses
    }


def build_spec(app: Flask) -> dict:
    """Assemble the document from the vendor adapters and any registered path contributors."""
    settings = app.extensions.get("smshooks.settings")
    spec = APISpec(
        title="smshooks",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "SMS vendor callbacks in, one keyed CloudEvent per callback out to Kafka. "
                             "An interactive page of this document is served at /docs."},
        # public_base_url is the URL vendors call; without it, the host that served this document
        servers=[{"url": (getattr(settings, "public_base_url", "") or "/").rstrip("/") or "/"}],
    )
    spec.components.schema("ErrorBody", schema=ErrorBody)
    spec.components.schema("Accepted", schema=Accepted)
    seen: set[str] = set()
    for vendor, adapter in sorted(app.extensions["smshooks.adapters"].items()):
        for kind, kind_spec in adapter.kinds.items():
            operations = {}
            for method in kind_spec.methods:
                operation: dict = {
                    "summary": kind_spec.summary or f"{vendor} {kind}",
                    "tags": [vendor],
                    "parameters": [
                        {"name": "account", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "Configured vendor account whose credentials apply"},
                        {"name": "token", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "Secret URL token (scheme url_token); may also be the last path segment"},
                    ],
                    "responses": {
                        "200": {"description": "Accepted: every event acknowledged by Kafka",
                                "content": {"application/json": {"schema": "Accepted"},
                                            "text/plain": {"schema": {"type": "string"}}}},
                        **error_responses(*ERROR_STATUSES),
                    },
                }
                schemas = []
                for schema_cls in kind_spec.schemas:
                    name = f"{vendor.title()}{schema_cls.__name__}"
                    if name not in seen:
                        spec.components.schema(name, schema=schema_cls)
                        seen.add(name)
                    schemas.append({"$ref": f"#/components/schemas/{name}"})
                body_schema = {"oneOf": schemas} if len(schemas) > 1 else (schemas or [{"type": "object"}])[0]
                if method == "GET":
                    operation["description"] = "Fields arrive as query parameters."
                else:
                    content = {}
                    if "json" in kind_spec.formats:
                        content["application/json"] = {"schema": body_schema}
                    if "form" in kind_spec.formats:
                        content["application/x-www-form-urlencoded"] = {"schema": body_schema}
                    if "text-json" in kind_spec.formats:
                        content["text/plain"] = {"schema": body_schema}  # JSON as text/plain (SNS)
                    operation["requestBody"] = {"required": True, "content": content}
                operations[method.lower()] = operation
            spec.path(path=f"/v1/callbacks/{vendor}/{kind}", operations=operations)
            # the same callback with its secret URL token as the last path segment (scheme url_token)
            token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
                     "description": "Secret URL token (scheme url_token)"}
            spec.path(path=f"/v1/callbacks/{vendor}/{kind}/{{token}}", operations={
                method: {**operation, "parameters": [p for p in operation["parameters"] if p["name"] != "token"]
                         + [token], "operationId": f"{vendor}_{kind}_{method}_with_token".replace("-", "_")}
                for method, operation in operations.items()})
    for contribute in app.extensions.get("smshooks.openapi", []):
        contribute(spec)
    spec.path(path="/metrics", operations={"get": {
        "summary": "Prometheus exposition (bearer metrics_token when set)",
        "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                      "401": {"description": "metrics_token set and not presented"}}}})
    spec.path(path="/healthz", operations={"get": {"summary": "Liveness", "responses": {"200": {"description": "up"}}}})
    spec.path(path="/readyz", operations={"get": {"summary": "Readiness: Kafka reachable",
                                                   "responses": {"200": {"description": "ready"},
                                                                 "503": {"description": "not ready"}}}})
    return spec.to_dict()


def add_paths(app: Flask, contribute: Callable[[APISpec], None]) -> None:
    """Let another blueprint document its routes in the same document."""
    app.extensions.setdefault("smshooks.openapi", []).append(contribute)


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI document, built once per process."""
    document = current_app.extensions.get("smshooks.openapi_document")
    if document is None:
        document = build_spec(current_app)
        current_app.extensions["smshooks.openapi_document"] = document
    return jsonify(document)

"""The read API: reconciliation reports, message status and opt-out lookups, behind a bearer token.

It lives in smshooks/, not processors/, because it joins the two sides: the receiver's HTTP error contract
and the processors' database.

Mounted by app.py through `init_app(app)`. Opens no database connection at import or in init_app: the
engine is created on the first request from the settings' effective database URL.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, jsonify, request, stream_with_context
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from core.events import digits_msisdn, utc_now
from core.settings import Settings
from processors.db.engine import make_engine
from processors.reports import params
from processors.reports.compliance import ComplianceRequest, build_compliance_report
from processors.reports.compliance import to_csv as compliance_csv
from processors.reports.compliance import to_html as compliance_html
from processors.reports.costs import CostRequest, build_cost_report
from processors.reports.costs import to_csv as costs_csv
from processors.reports.costs import to_html as costs_html
from processors.reports.failures import FailureRequest, build_failure_report
from processors.reports.failures import to_csv as failures_csv
from processors.reports.failures import to_html as failures_html
from processors.reports.formats import to_csv, to_json
from processors.reports.html import to_html
from processors.reports.messages import message_status
from processors.reports.opt_outs import (
    consent_history,
    consent_history_csv,
    opt_out_status,
    suppression_csv,
    suppression_json,
    suppression_rows,
)
from processors.reports.reconciliation import ReportRequest, build_report
from receiver.errors import ConstraintViolation, InvalidParameterFormat, NotFound, ServiceUnavailable, Unauthorized
from receiver.vendors import canonical_message_id, load_adapters

bp = Blueprint("read_api", __name__)
ENGINE = "smshooks.read_engine"
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "html": "text/html"}
MAX_MESSAGE_ID = 191


class ReadApiDisabled(ServiceUnavailable):
    """No api_token is configured, so the read API answers nobody (503: a server-side condition)."""

    code = "read_api_disabled"
    text = "The read API is disabled: set SMSHOOKS_API_TOKEN to enable it."


class DatabaseUnavailable(ServiceUnavailable):
    """The database did not answer; retry later."""

    code = "database_unavailable"
    text = "The database is unavailable; retry after the delay in Retry-After."


def init_app(app: Flask) -> None:
    """Register the routes and their OpenAPI paths; connects to nothing.

    The database is not part of the receiver's /readyz: callbacks need only Kafka, and a database outage must
    not take every receiver out of its load balancer (the read API answers 503 database_unavailable itself).
    """
    from receiver.openapi import add_paths

    app.register_blueprint(bp)
    add_paths(app, _document)
    app.extensions.setdefault("smshooks.read_engine_lock", threading.Lock())


def read_engine(app: Flask) -> Engine:
    """The app's engine, created once on first use (after gunicorn's fork)."""
    engine = app.extensions.get(ENGINE)
    if engine is None:
        with app.extensions["smshooks.read_engine_lock"]:
            engine = app.extensions.get(ENGINE)
            if engine is None:
                url = app.extensions["smshooks.settings"].effective_database_url
                # SQLite readers use a plain engine: make_engine's BEGIN IMMEDIATE would block the processors.
                engine = create_engine(url) if url.startswith("sqlite") else make_engine(url)
                app.extensions[ENGINE] = engine
    return engine


def database_ready(app: Flask) -> bool:
    """True when the database answers `SELECT 1` (a missing SQLite file is not ready, and is not created); for tools."""
    url = app.extensions["smshooks.settings"].effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return False
    try:
        with read_engine(app).connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


def _settings() -> Settings:
    return current_app.extensions["smshooks.settings"]


@bp.before_request
def authenticate() -> None:
    """`Authorization: Bearer <api_token>`, compared in constant time."""
    token = _settings().api_token
    if not token:
        raise ReadApiDisabled()
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Unauthorized("A valid 'Authorization: Bearer <token>' header is required.",
                           headers={"WWW-Authenticate": 'Bearer realm="smshooks"'})


@bp.errorhandler(params.ParameterError)
def bad_parameter(error: params.ParameterError):
    """400 with the documented body, the offending parameter named under `errors`."""
    from receiver.views import error_response

    cls = InvalidParameterFormat if error.kind == "format" else ConstraintViolation
    return error_response(cls(errors={error.name: [error.message]}))


@bp.errorhandler(SQLAlchemyError)
def database_error(error: SQLAlchemyError):
    """503 when the database fails; the details go to the log, not the client."""
    from receiver.views import error_response

    current_app.logger.warning("read API database error: %s", str(error).splitlines()[0])
    return error_response(DatabaseUnavailable())


def _format(default_order: tuple[str, ...]) -> str:
    """`?format=` when given, else the best match of the Accept header, else the first of default_order."""
    if "format" in request.args:
        return params.parse_format(request.args["format"])
    offered = [MEDIA_TYPES[name] for name in default_order]
    best = request.accept_mimetypes.best_match(offered, default=offered[0])
    return next(name for name, media in MEDIA_TYPES.items() if media == best)


@bp.get("/v1/reports/reconciliation")
def reconciliation_report() -> Response:
    """The reconciliation report over [from, to) of sent time, grouped, as JSON, CSV or HTML."""
    args = request.args
    now = params.parse_time("now", args["now"]) if args.get("now") else utc_now()
    start, end = params.parse_range(args.get("from"), args.get("to"), now)
    report_request = ReportRequest(
        start=start, end=end, now=now, group_by=params.parse_group_by(args.get("group_by")),
        list_limit=params.parse_limit(args.get("limit")),
    )
    fmt = _format(("json", "csv", "html"))
    with read_engine(current_app._get_current_object()).connect() as connection:
        report = build_report(connection, _settings(), report_request)
        if fmt == "html":  # the same range one period earlier, beside each headline figure
            previous = build_report(connection, _settings(), report_request.earlier())
    if fmt == "html":
        body = to_html(report, previous, base_url=_settings().public_base_url)
    else:
        body = {"json": to_json, "csv": to_csv}[fmt](report)
    response = Response(body, mimetype=MEDIA_TYPES[fmt])
    if fmt == "csv":
        name = f"reconciliation_{start:%Y%m%d}_{end:%Y%m%d}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _rendered(report: dict, fmt: str, to_csv: Callable[[dict], str], to_html: Callable[..., str],
              filename: str) -> Response:
    """A report as JSON, as a CSV download named `filename`, or as its HTML page (linking the same query as CSV)."""
    if fmt == "csv":
        response = Response(to_csv(report), mimetype=MEDIA_TYPES["csv"])
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    elif fmt == "html":
        csv_url = request.path + "?" + urlencode({**request.args.to_dict(), "format": "csv"})
        response = Response(to_html(report, csv_url=csv_url), mimetype=MEDIA_TYPES["html"])
    else:
        response = jsonify(report)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/v1/reports/opt-outs")
def opt_out_report() -> Response:
    """Opt-out compliance over [from, to): messages sent after an opt-out and the time to honour each, JSON/CSV/HTML."""
    args = request.args
    settings = _settings()
    now = params.parse_time("now", args["now"]) if args.get("now") else utc_now()
    start, end = params.parse_range(args.get("from"), args.get("to"), now)
    grace = params.parse_limit(args.get("grace_days"), default=settings.opt_out_grace_business_days, maximum=365,
                               name="grace_days")
    fmt = _format(("json", "csv", "html"))
    limit = 100_000 if fmt == "csv" else params.parse_limit(args.get("limit"))  # the CSV is the whole list
    compliance_request = ComplianceRequest(start=start, end=end, now=now, grace_business_days=grace, list_limit=limit)
    with read_engine(current_app._get_current_object()).connect() as connection:
        report = build_compliance_report(connection, settings, compliance_request)
    name = f"sent_after_opt_out_{start:%Y%m%d}_{end:%Y%m%d}.csv"
    return _rendered(report, fmt, compliance_csv, compliance_html, name)


@bp.get("/v1/reports/costs")
def cost_report() -> Response:
    """What was paid for over [from, to) of sent time, per group and currency, as JSON, CSV or HTML."""
    args = request.args
    now = params.parse_time("now", args["now"]) if args.get("now") else utc_now()
    start, end = params.parse_range(args.get("from"), args.get("to"), now)
    cost_request = CostRequest(start, end, now, params.parse_group_by(args.get("group_by")),
                               params.parse_limit(args.get("limit")))
    fmt = _format(("json", "csv", "html"))
    with read_engine(current_app._get_current_object()).connect() as connection:
        report = build_cost_report(connection, _settings(), cost_request)
    return _rendered(report, fmt, costs_csv, costs_html, f"costs_{start:%Y%m%d}_{end:%Y%m%d}.csv")


@bp.get("/v1/reports/failures")
def failure_report() -> Response:
    """Why messages sent in [from, to) failed: per vendor, the top reasons with code and meaning, JSON/CSV/HTML."""
    args = request.args
    start, end = params.parse_range(args.get("from"), args.get("to"), utc_now())
    top = params.parse_limit(args.get("top"), default=10, maximum=1000, name="top")
    fmt = _format(("json", "csv", "html"))
    with read_engine(current_app._get_current_object()).connect() as connection:
        report = build_failure_report(connection, FailureRequest(start, end, max(top, 1)))
    return _rendered(report, fmt, failures_csv, failures_html, f"failures_{start:%Y%m%d}_{end:%Y%m%d}.csv")


@bp.get("/v1/opt-outs/<msisdn>/history")
def opt_out_history(msisdn: str) -> Response:
    """The consent history of one number for every sender (each change, its source and evidence), JSON or CSV."""
    number = digits_msisdn(msisdn)
    if not number or not number.isdigit() or not 6 <= len(number) <= 15:
        raise params.ParameterError("msisdn", f"{msisdn[:40]!r} is not a phone number (E.164, 6-15 digits)")
    fmt = _format(("json", "csv"))
    if fmt == "html":
        raise params.ParameterError("format", "the consent history is JSON or CSV", "constraint")
    with read_engine(current_app._get_current_object()).connect() as connection:
        rows = consent_history(connection, number)
    if fmt == "json":
        return jsonify({"msisdn": number, "history": rows})
    response = Response(consent_history_csv(rows), mimetype=MEDIA_TYPES["csv"])
    response.headers["Content-Disposition"] = f'attachment; filename="consent_history_{number}.csv"'
    return response


@bp.get("/v1/messages/<vendor>/<path:message_id>")
def message(vendor: str, message_id: str) -> Response:
    """Current status, receipt history, conflicts and clicks of one sent message."""
    if vendor not in load_adapters():
        raise NotFound(f"Unknown vendor {vendor[:40]!r}.")
    if not message_id.strip() or len(message_id) > MAX_MESSAGE_ID:
        raise params.ParameterError("message_id", f"must be 1 to {MAX_MESSAGE_ID} characters", "constraint")
    with read_engine(current_app._get_current_object()).connect() as connection:
        found = message_status(connection, vendor, canonical_message_id(vendor, message_id))
    if found is None:
        raise NotFound(f"No sent message or receipt for {vendor} message {message_id[:60]!r}.")
    return jsonify(found)


@bp.get("/v1/opt-outs/<msisdn>")
def opt_out(msisdn: str) -> Response:
    """Whether a subscriber is opted out for a sender (or account-wide), why and since when."""
    settings = _settings()
    number = digits_msisdn(msisdn)
    if not number or not number.isdigit() or not 6 <= len(number) <= 15:
        raise params.ParameterError("msisdn", f"{msisdn[:40]!r} is not a phone number (E.164, 6-15 digits)")
    sender = request.args.get("sender")
    if settings.opt_out_scope == "sender" and not (sender or "").strip():
        raise params.ParameterError("sender", "required: opt-outs are kept per sender (our number)", "constraint")
    if sender is not None and len(sender) > 64:
        raise params.ParameterError("sender", "must be at most 64 characters", "constraint")
    with read_engine(current_app._get_current_object()).connect() as connection:
        return jsonify(opt_out_status(connection, number, sender, settings.opt_out_scope))


@bp.get("/v1/opt-outs")
def opt_outs() -> Response:
    """The suppression list: everyone currently opted out (optionally since a time), as CSV or JSON."""
    since = params.parse_time("since", request.args["since"]) if request.args.get("since") else None
    fmt = _format(("csv", "json"))
    if fmt == "html":
        raise params.ParameterError("format", "the suppression list is CSV or JSON", "constraint")
    app = current_app._get_current_object()
    scope = _settings().opt_out_scope

    def generate():
        with read_engine(app).connect() as connection:
            rows = suppression_rows(connection, scope, since)
            yield from (suppression_csv(rows) if fmt == "csv" else suppression_json(rows))

    response = Response(stream_with_context(generate()), mimetype=MEDIA_TYPES[fmt])
    if fmt == "csv":
        response.headers["Content-Disposition"] = 'attachment; filename="suppression_list.csv"'
    return response


def _document(spec) -> None:
    """OpenAPI paths of the read API."""
    from receiver.openapi import error_responses
    from smshooks.api_schemas import VIEWS

    for name, view in VIEWS.items():
        spec.components.schema(name, schema=view)
    spec.components.security_scheme("readApiToken", {"type": "http", "scheme": "bearer"})
    security = [{"readApiToken": []}]
    errors = error_responses("400", "401", "503")

    def query(name: str, description: str, required: bool = False, **schema) -> dict:
        return {"name": name, "in": "query", "required": required, "description": description,
                "schema": {"type": "string", **schema}}

    fmt = query("format", "Output format; otherwise chosen from Accept", enum=list(params.FORMATS))
    spec.path(path="/v1/reports/reconciliation", operations={"get": {
        "summary": "Reconciliation report", "tags": ["read API"], "security": security,
        "parameters": [
            query("from", "Start of the sent-time range, inclusive (YYYY-MM-DD or ISO 8601, UTC); default to - 7 days"),
            query("to", "End of the sent-time range, exclusive; default now"),
            query("group_by", "Comma-separated subset of " + ", ".join(params.DIMENSIONS)),
            fmt,
            query("now", "Instant ages are measured from (missing/unmatched); default now"),
            query("limit", "How many missing and unmatched receipts to list (default 1000)", format="int32"),
        ],
        "responses": {"200": {"description": "The report", "content": {
            "application/json": {"schema": "ReportView"}, "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}}}}, **errors},
    }})
    spec.path(path="/v1/reports/opt-outs", operations={"get": {
        "summary": "Opt-out compliance: messages sent after an opt-out, time to honour each opt-out",
        "tags": ["read API"], "security": security,
        "parameters": [
            query("from", "Start of the range (sent time of messages, receive time of opt-outs), inclusive"),
            query("to", "End of the range, exclusive; default now"),
            query("grace_days", "Business days allowed to honour an opt-out (default opt_out_grace_business_days)",
                  format="int32"),
            fmt,
            query("now", "Messages after an opt-out are followed up to this instant; default now"),
            query("limit", "How many entries to list in JSON and HTML (default 1000); CSV lists all", format="int32"),
        ],
        "responses": {"200": {"description": "The report; CSV is the sent-after-opt-out list", "content": {
            "application/json": {"schema": "ComplianceReportView"}, "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}}}}, **errors},
    }})
    spec.path(path="/v1/reports/costs", operations={"get": {
        "summary": "What was paid for: reported and expected costs per group and currency", "tags": ["read API"],
        "security": security,
        "parameters": [
            query("from", "Start of the sent-time range, inclusive; default to - 7 days"),
            query("to", "End of the sent-time range, exclusive; default now"),
            query("group_by", "Comma-separated subset of " + ", ".join(params.DIMENSIONS)), fmt,
            query("now", "Instant 'missing' is measured from; default now"),
            query("limit", "How many messages whose price differs to list (default 1000)", format="int32"),
        ],
        "responses": {"200": {"description": "The report", "content": {
            "application/json": {"schema": "CostReportView"}, "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}}}}, **errors},
    }})
    spec.path(path="/v1/reports/failures", operations={"get": {
        "summary": "Why messages failed: top failure reasons per vendor, with code and meaning", "tags": ["read API"],
        "security": security,
        "parameters": [
            query("from", "Start of the sent-time range, inclusive; default to - 7 days"),
            query("to", "End of the sent-time range, exclusive; default now"),
            query("top", "Reasons listed per vendor (default 10)", format="int32"), fmt,
        ],
        "responses": {"200": {"description": "The reasons", "content": {
            "application/json": {"schema": "FailureReportView"}, "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}}}}, **errors},
    }})
    spec.path(path="/v1/opt-outs/{msisdn}/history", operations={"get": {
        "summary": "Consent history of one number: every change, its source and evidence", "tags": ["read API"],
        "security": security,
        "parameters": [
            {"name": "msisdn", "in": "path", "required": True, "schema": {"type": "string"}},
            query("format", "json (default) or csv", enum=["json", "csv"]),
        ],
        "responses": {"200": {"description": "The history, oldest first", "content": {
            "application/json": {"schema": "ConsentHistoryView"}, "text/csv": {"schema": {"type": "string"}}}},
            **errors},
    }})
    spec.path(path="/v1/messages/{vendor}/{message_id}", operations={"get": {
        "summary": "Status, receipt history, conflicts and clicks of one message", "tags": ["read API"],
        "security": security,
        "parameters": [
            {"name": "vendor", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "message_id", "in": "path", "required": True, "schema": {"type": "string"}},
        ],
        "responses": {"200": {"description": "The message", "content": {"application/json": {
            "schema": "MessageView"}}}, **error_responses("400", "401", "404", "503")},
    }})
    spec.path(path="/v1/opt-outs/{msisdn}", operations={"get": {
        "summary": "Is this number opted out for this sender?", "tags": ["read API"], "security": security,
        "parameters": [
            {"name": "msisdn", "in": "path", "required": True, "schema": {"type": "string"}},
            query("sender", "Our number (required when opt-outs are per sender)"),
        ],
        "responses": {"200": {"description": "Consent, keyword, time and recent history", "content": {
            "application/json": {"schema": "OptOutView"}}}, **errors},
    }})
    spec.path(path="/v1/opt-outs", operations={"get": {
        "summary": "Suppression list: everyone currently opted out", "tags": ["read API"], "security": security,
        "parameters": [query("since", "Only opt-outs at or after this time"),
                       query("format", "csv (default) or json", enum=["csv", "json"])],
        "responses": {"200": {"description": "The list", "content": {
            "text/csv": {"schema": {"type": "string"}}, "application/json": {"schema": {
                "type": "array", "items": {"$ref": "#/components/schemas/SuppressionRowView"}}}}},
            **errors},
    }})

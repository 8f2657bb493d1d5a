"""Callback routes: guard, authenticate, parse, validate, normalize, publish, answer."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import orjson
from flask import Blueprint, Request, Response, current_app, g, jsonify, request
from marshmallow import ValidationError
from prometheus_client import Counter

from core.events import TOPIC_CALLBACKS_REJECTED, Envelope, Payload, rejected_record, utc_now
from receiver.auth import CallbackRequest, authenticate, parse_query
from receiver.errors import (
    ApiError,
    InvalidJson,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    validation_error,
)
from receiver.fields import PARSE_WARNINGS
from receiver.parsing import media_type, parse_body, payload_format
from receiver.publisher import PublishUnavailable
from receiver.vendors.base import CallbackContext, EntryRejection, KindSpec, VendorAdapter

log = logging.getLogger(__name__)
bp = Blueprint("callbacks", __name__)
PARSE_WARNING_COUNT = Counter(
    "smshooks_parse_warnings_total", "Described fields that did not parse (kept raw, null in the event).",
    ["vendor", "kind", "field"],
)

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# our own control parameters, never part of a vendor payload or of what we store
CONTROL_PARAMETERS = {"token", "account"}
SECRET_HEADERS = {
    "authorization", "proxy-authorization", "cookie", "x-twilio-signature", "x-sinch-webhook-signature",
    "x-sinch-webhook-signature-nonce", "webhook-signature", "x-api-key",
    "telnyx-signature-ed25519", "x-plivo-signature-v3", "x-plivo-signature-ma-v3", "x-plivo-signature-v3-nonce",
}


def _adapter(vendor: str, kind: str) -> tuple[VendorAdapter, KindSpec]:
    """The adapter and kind spec for the URL, or 404 for anything unknown or disabled."""
    adapter = current_app.extensions["smshooks.adapters"].get(vendor)
    settings = current_app.extensions["smshooks.settings"]
    if adapter is None or not settings.vendor(vendor).enabled:
        raise NotFound(f"Unknown vendor {vendor[:40]!r}.")
    spec = adapter.kinds.get(kind)
    if spec is None:
        raise NotFound(f"{vendor} does not call back with {kind[:40]!r}.")
    return adapter, spec


def read_body(req: Request, limit: int) -> tuple[bytes, bool]:
    """The raw body up to `limit` bytes, and whether it was longer (413); 400 when its framing is broken, 408 when
    the client does not send it within the worker's read deadline (smshooks/workers.py)."""
    try:
        return _read_body(req, limit)
    except TimeoutError:
        g.raw_body = b""
        raise RequestTimeout() from None
    except Exception as exc:  # noqa: BLE001 - the server's framing errors (gunicorn's InvalidChunkSize, NoMoreData...)
        g.raw_body = b""  # what was read is gone with the broken framing; the rejection is kept without it
        log.info("malformed request body: %s: %s", type(exc).__name__, str(exc)[:200])
        raise MalformedBody() from None


def _read_body(req: Request, limit: int) -> tuple[bytes, bool]:
    length = req.content_length
    if length is not None and length > limit:
        return req.stream.read(limit), True
    if length is not None:
        # the server's input bounded by the declared length, as werkzeug's stream would read it, without the
        # LimitedStream wrapper's cost; a shorter body (client gone) fails parsing like any truncated body
        return req.environ["wsgi.input"].read(length), False
    body = req.stream.read(limit + 1)
    return body[:limit], len(body) > limit


@bp.route("/v1/callbacks/<vendor>/<kind>", methods=ALL_METHODS)
@bp.route("/v1/callbacks/<vendor>/<kind>/<path_token>", methods=ALL_METHODS)
def callback(vendor: str, kind: str, path_token: str | None = None) -> Response:
    """One vendor callback in, its events on Kafka, the vendor's expected answer out."""
    # the objects behind Flask's context proxies, looked up once: each proxy access costs a context lookup
    req, state = request._get_current_object(), g._get_current_object()
    settings = current_app.extensions["smshooks.settings"]
    state.vendor, state.kind = vendor, kind
    adapter, spec = _adapter(vendor, kind)
    method, content_type = req.method, req.content_type
    if method not in spec.methods:
        raise MethodNotAllowed(headers={"Allow": ", ".join(spec.methods)})
    body, too_large = read_body(req, settings.max_body_bytes)
    state.raw_body = body
    if too_large:
        raise PayloadTooLarge(f"The body is larger than {settings.max_body_bytes} bytes.")
    query = parse_query(req.query_string)
    account_name = dict(query).get("account")
    vendor_settings = settings.vendor(vendor)
    account = vendor_settings.accounts.get(account_name) if account_name is not None else None
    schemes = account.auth if account else vendor_settings.auth
    account_ids = account.account_ids if account else vendor_settings.account_ids
    fmt = payload_format(method, content_type, spec.formats) if method != "GET" else "query"
    signature_valid = authenticate(schemes, _callback_request(req, settings, body, query, path_token, fmt, schemes))
    if account_name is not None and account is None:
        _refuse_unknown_account(vendor_settings, account_name)
    ctx = CallbackContext(
        vendor=vendor, kind=kind, request_id=state.request_id, received_at=utc_now(), method=method,
        payload_format=fmt, account=account_name, account_ids=account_ids, signature_valid=signature_valid,
        idempotency_token=req.headers.get(adapter.idempotency_header) if adapter.idempotency_header else None,
    )
    envelopes = events_from(spec, body, content_type, req.query_string, ctx)
    if envelopes:  # a callback may carry no event (Vonage's URL check); there is nothing to wait an ack for
        publish(envelopes, spool=vendor_settings.when_kafka_is_down == "spool")
    if ctx.rejections:
        record_entry_rejections(ctx.rejections)
    ack = spec.ack(envelopes, ctx) if spec.ack else None
    if ack is not None:
        text, mimetype = ack
        return Response(text, status=200, mimetype=mimetype)
    return accepted(state.request_id, envelopes, ctx.rejections)


def events_from(spec: KindSpec, body: bytes, content_type: str | None, query_string: bytes,
                ctx: CallbackContext) -> list[Envelope]:
    """Parse, validate and normalize one callback into its events: the view's steps after authentication, and
    `smshooks replay rejected`'s."""
    payload = parse_body(ctx.payload_format, body, content_type, query_string)
    if ctx.payload_format == "query":
        payload = {k: v for k, v in payload.items() if k not in CONTROL_PARAMETERS}
    return [Envelope.wrap(p, ctx.request_id) for p in normalize(spec, payload, ctx)]


def normalize(spec: KindSpec, payload: Any, ctx: CallbackContext) -> list[Payload]:
    """The request's events; described fields that did not parse become parse warnings on them, not a 400."""
    warnings: list[dict[str, str]] = []
    token = PARSE_WARNINGS.set(warnings)
    try:
        payloads = spec.normalize(payload, ctx)
    except ValidationError as exc:
        raise validation_error(exc.messages) from None
    finally:
        PARSE_WARNINGS.reset(token)
    if not warnings:
        return payloads
    for warning in warnings:
        PARSE_WARNING_COUNT.labels(ctx.vendor, ctx.kind, warning["field"][:64]).inc()
    log.warning("parse warnings on %s %s: %s", ctx.vendor, ctx.kind, ", ".join(w["field"] for w in warnings))
    noted = tuple(warnings)
    return [replace(p, parse_warnings=noted) if hasattr(p, "parse_warnings") else p for p in payloads]


def _refuse_unknown_account(vendor_settings, account_name: str) -> None:
    """An unknown `?account=` is answered only after the vendor's own checks passed, so account names cannot be
    probed: without credentials, a known and an unknown account both get 401. A vendor without checks of its own
    whose accounts have some answers 401 too; one with no checks anywhere has nothing to hide (404)."""
    if not vendor_settings.auth and any(account.auth for account in vendor_settings.accounts.values()):
        raise Unauthorized("The credentials are missing or wrong.")
    raise NotFound(f"Unknown account {account_name[:40]!r} for {vendor_settings.name}.")


def publish(envelopes: list[Envelope], spool: bool = True) -> None:
    """Put every event on Kafka and wait for the acks (or into the spool); 503 when neither can take them now."""
    try:
        current_app.extensions["smshooks.publisher"].publish(envelopes, spool=spool)
    except PublishUnavailable as exc:
        log.warning("publish failed: %s", exc)
        raise ServiceUnavailable() from None
    except ValueError:
        # the last guard: the event encoder refuses NaN and Infinity (not JSON), which parsing already refuses
        raise InvalidJson("A value of the callback cannot be written as JSON (NaN or Infinity).") from None
    g.event_count = len(envelopes)


def accepted(request_id: str, envelopes: list[Envelope], rejections: list[EntryRejection] = ()) -> Response:
    """The documented 200 body: the request id, every event id and any bundle entries kept as rejected."""
    body: dict[str, Any] = {"status": "accepted", "request_id": request_id, "event_ids": [e.id for e in envelopes]}
    if rejections:
        body["rejected_entries"] = [{"entry": r.index, "code": r.error.code, "text": r.error.text} for r in rejections]
        return Response(json.dumps(body, separators=(",", ":")) + "\n", mimetype="application/json")
    # ids only (ASCII: request ids are checked, event ids are UUIDs): orjson writes json.dumps's very bytes
    return Response(orjson.dumps(body) + b"\n", mimetype="application/json")


def request_headers(environ: dict[str, Any]) -> dict[str, str]:
    """Every request header by lower-cased name, read straight from the WSGI environ (as werkzeug does)."""
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key[:5] == "HTTP_"}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _callback_request(req: Request, settings, body: bytes, query, path_token: str | None, fmt: str,
                      schemes) -> CallbackRequest:
    """The view of the request the auth schemes check; only what the configured schemes read is computed."""
    needed = {scheme.scheme for scheme in schemes}
    url = ""
    if needed & {"twilio_signature", "plivo_signature"}:
        # Twilio and Plivo sign the URL they called: rebuild it from the public base URL behind proxies
        base = settings.public_base_url.rstrip("/") if settings.public_base_url else req.host_url.rstrip("/")
        url = base + req.full_path if req.query_string else base + req.path
    form = []
    if fmt == "form" and needed & {"twilio_signature", "vonage_signature", "plivo_signature"}:
        _, charset = media_type(req.content_type)
        try:
            # vendors sign the decoded parameter values, so decode in the body's own charset
            form = parse_qsl(body.decode(charset), keep_blank_values=True, errors="strict")
        except (UnicodeError, LookupError):
            form = []
    return CallbackRequest(
        method=req.method,
        url=url,
        path_token=path_token,
        query=query,
        form=form,
        headers=request_headers(req.environ),
        body=body,
        client_ip=req.remote_addr or "",
    )


def safe_headers() -> dict[str, str]:
    """Request headers minus anything that carries a secret."""
    return {k: v[:512] for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS}


def redacted_path(req: Request) -> str:
    """The path with anything after `/v1/callbacks/<vendor>/<kind>/` replaced, so a URL token never reaches Kafka or
    the logs, also when the path matches no route (`<token>/`, `<token>%2f`: 404)."""
    path = req.path
    parts = path.split("/", 5)
    if len(parts) == 6 and parts[5] and parts[1] == "v1" and parts[2] == "callbacks":
        return "/".join(parts[:5]) + "/<redacted>"
    return path


def redacted_query() -> str:
    """The query string with our token and Vonage's `sig` blanked."""
    pairs = parse_query(request.query_string)
    return "&".join(f"{k}={'<redacted>' if k in {'token', 'sig'} else v}" for k, v in pairs)


def record_entry_rejections(rejections: list[EntryRejection]) -> None:
    """Put each bundle entry we do not serve on `sms.callbacks.rejected`; 503 if Kafka cannot take them (the
    vendor's retry republishes the served entries under the same event ids)."""
    try:
        for rejection in rejections:
            body = json.dumps(rejection.body, separators=(",", ":"), ensure_ascii=False).encode()
            record_rejection(rejection.error, body=body, entry=rejection.index)
    except PublishUnavailable as exc:
        log.warning("could not record a rejected bundle entry: %s", exc)
        raise ServiceUnavailable("A bundle entry was rejected but could not be recorded; retry later.") from None
    log.info("bundle entries kept as rejected: %s", ", ".join(f"{r.index}:{r.error.code}" for r in rejections))


def record_rejection(error: ApiError, body: bytes | None = None, entry: int | None = None) -> None:
    """Put a rejected callback (or one rejected entry of a bundle, as its own replayable body) on
    `sms.callbacks.rejected`; raise PublishUnavailable if Kafka is down."""
    if body is None:
        body = getattr(g, "raw_body", None)
    if body is None:
        body = request.stream.read(current_app.extensions["smshooks.settings"].max_body_bytes)
    key, headers, value = rejected_record(
        request_id=g.request_id,
        vendor=getattr(g, "vendor", ""),
        kind=getattr(g, "kind", ""),
        status=error.status,
        code=error.code,
        text=error.text,
        errors=error.errors,
        method=request.method,
        path=redacted_path(request),
        query=redacted_query(),
        content_type=request.content_type or "",
        headers=safe_headers(),
        body_base64=base64.b64encode(body).decode(),
        truncated=error.status == 413,
        received_at=utc_now(),
        entry=entry,
    )
    current_app.extensions["smshooks.publisher"].publish_raw(TOPIC_CALLBACKS_REJECTED, key, headers, value)


def error_response(error: ApiError) -> Response:
    """The documented error body for an ApiError; rejections are recorded first (503 if that fails)."""
    if error.recorded and request.path.startswith("/v1/callbacks/"):
        try:
            record_rejection(error)
        except PublishUnavailable as exc:
            # Vendors never retry a 4xx; if we cannot keep the callback we must ask for a retry instead.
            log.warning("could not record rejected callback: %s", exc)
            error = ServiceUnavailable("The callback was rejected but could not be recorded; retry later.")
    settings = current_app.extensions["smshooks.settings"]
    response = jsonify(error.body(g.get("request_id", "")))
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    if error.status in (429, 503) and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(settings.retry_after_seconds)
    return response


def error_response_for(status: int, text: str | None = None, **kwargs: Any) -> Response:
    """Render one of the generic statuses (404, 405, 500) raised outside our views."""
    from receiver import errors

    cls = {404: errors.NotFound, 405: errors.MethodNotAllowed, 500: errors.ApiError}.get(status, errors.ApiError)
    return error_response(cls(text, **kwargs))

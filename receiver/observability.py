"""Receiver operations: Prometheus metrics (gunicorn multiprocess aware), JSON request logs, the AsyncAPI route."""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Request, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from core.events import TOPIC_CALLBACKS_REJECTED
from core.logs import MaskingFilter, configure_logging, json_handler, mask  # noqa: F401 - re-exported
from core.metrics_access import metrics_authorized
from receiver.vendors.base import KINDS
from receiver.views import redacted_path

log = logging.getLogger("smshooks.requests")
bp = Blueprint("observability", __name__)

# Labels only ever take known values: a vendor or kind from the URL is "unknown" unless we serve it,
# so a scanner hitting random paths cannot blow up the series count.
CALLBACKS = Counter(
    "smshooks_callbacks_total", "Callback requests answered, by vendor, kind and HTTP status.",
    ["vendor", "kind", "status"],
)
CALLBACK_EVENTS = Counter(
    "smshooks_callback_events_total", "Events published from accepted callbacks.", ["vendor", "kind"],
)
VALIDATION_FAILURES = Counter(
    "smshooks_validation_failures_total", "Callbacks answered 400, by error code.", ["vendor", "kind", "code"],
)
REJECTED = Counter(
    "smshooks_callbacks_rejected_total", "Rejected callbacks recorded on sms.callbacks.rejected, by reason.",
    ["vendor", "kind", "code"],
)
PUBLISH_SECONDS = Histogram(
    "smshooks_publish_duration_seconds", "Time from send to the last Kafka ack of one request's records.",
    ["outcome"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUEST_SECONDS = Histogram(
    "smshooks_callback_duration_seconds", "Callback request handling time, by vendor and kind.", ["vendor", "kind"],
)

QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}


@functools.cache
def child(metric: Counter | Histogram, *labels: str) -> Any:
    """The metric's child for these labels, looked up once: `labels()` validates and locks on every call.

    Bounded like the series themselves, since every label takes only known values.
    """
    return metric.labels(*labels)


def multiprocess_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR when gunicorn runs several workers sharing metric files."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition: summed over all workers in multiprocess mode, this process otherwise."""
    if not metrics_authorized(current_app.extensions["smshooks.settings"].metrics_token,
                              request.headers.get("Authorization", "")):
        return Response("metrics_token required\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if multiprocess_dir():
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    from receiver.spooling import spool_metrics

    exposition = generate_latest(registry) + spool_metrics(current_app.extensions["smshooks.publisher"])
    return Response(exposition, content_type=CONTENT_TYPE_LATEST)  # mimetype= adds a 2nd charset


def asyncapi_path() -> Path | None:
    """docs/asyncapi.yaml next to the package (source checkout, image) or under the working directory."""
    for base in (Path(__file__).resolve().parents[1], Path.cwd()):
        candidate = base / "docs" / "asyncapi.yaml"
        if candidate.is_file():
            return candidate
    return None


@bp.get("/asyncapi.yaml")
def asyncapi() -> Response:
    """The AsyncAPI 3 catalogue of our Kafka topics, the event side of the OpenAPI document."""
    path = asyncapi_path()
    if path is None:
        return Response("asyncapi.yaml is not installed\n", status=404, mimetype="text/plain")
    return Response(path.read_bytes(), mimetype="application/yaml")


def _labels(req: Request | None = None) -> tuple[str, str]:
    """(vendor, kind) of a callback URL, each "unknown" unless it is one we serve."""
    view_args = (req or request).view_args or {}
    vendor = view_args.get("vendor", "")
    kind = view_args.get("kind", "")
    adapters = current_app.extensions.get("smshooks.adapters", {})
    return (vendor if vendor in adapters else "unknown", kind if kind in KINDS else "unknown")


def _start_clock() -> None:
    g.started_at = time.perf_counter()


def _observe(response: Response) -> Response:
    """Count the callback and write its one JSON log line."""
    # the objects behind the context proxies, looked up once (each proxy access is a context lookup)
    req, state = request._get_current_object(), g._get_current_object()
    started = getattr(state, "started_at", None)
    duration = time.perf_counter() - started if started is not None else 0.0
    event_count = getattr(state, "event_count", 0)
    path = req.path
    vendor = kind = None
    if path.startswith("/v1/callbacks/"):
        vendor, kind = _labels(req)
        child(CALLBACKS, vendor, kind, str(response.status_code)).inc()
        child(REQUEST_SECONDS, vendor, kind).observe(duration)
        if event_count:
            child(CALLBACK_EVENTS, vendor, kind).inc(event_count)
        if response.status_code == 400:
            body = response.get_json(silent=True) or {}
            VALIDATION_FAILURES.labels(vendor, kind, str(body.get("code", "unknown"))[:64]).inc()
    level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
    if not log.isEnabledFor(level):
        return response
    log.log(level, "request", extra={
        "method": req.method,
        "path": redacted_path(req),
        "status": response.status_code,
        "duration_ms": round(duration * 1000, 2),
        "vendor": vendor or getattr(state, "vendor", None),
        "kind": kind or getattr(state, "kind", None),
        "event_count": event_count,
        "request_id": getattr(state, "request_id", None),
    })
    return response


def _timed(publish, outcome_of_kind: str):
    """Wrap a publisher method so its latency lands in the publish histogram."""

    @functools.wraps(publish)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        outcome = "error"
        try:
            result = publish(*args, **kwargs)
            outcome = outcome_of_kind
            return result
        finally:
            child(PUBLISH_SECONDS, outcome).observe(time.perf_counter() - started)

    return timed


def _instrument_publisher(publisher: Any) -> None:
    """Time publish and count recorded rejections, on the instance so tests' fakes keep working."""
    if getattr(publisher, "smshooks_instrumented", False):
        return
    publisher.publish = _timed(publisher.publish, "ok")
    publish_raw = _timed(publisher.publish_raw, "ok")

    @functools.wraps(publish_raw)
    def counted_raw(topic: str, key: str, headers: list[tuple[str, bytes]], value: bytes) -> None:
        publish_raw(topic, key, headers, value)
        if topic == TOPIC_CALLBACKS_REJECTED:
            vendor, kind = _labels() if request else ("unknown", "unknown")
            reason = dict(headers).get("reason", b"unknown").decode("utf-8", "replace")[:64]
            REJECTED.labels(vendor, kind, reason).inc()

    publisher.publish_raw = counted_raw
    publisher.smshooks_instrumented = True


def init_app(app: Flask) -> None:
    """Metrics, JSON request logs and the /metrics and /asyncapi.yaml routes for one app."""
    settings = app.extensions["smshooks.settings"]
    configure_logging(settings.log_level)
    _instrument_publisher(app.extensions["smshooks.publisher"])
    # first, so a request stopped by an earlier hook (rate limit) still has a start time
    app.before_request_funcs.setdefault(None, []).insert(0, _start_clock)
    app.after_request(_observe)
    app.register_blueprint(bp)

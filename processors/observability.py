"""Processor operations: Prometheus metrics on their own port, per-batch JSON logs, lag and backlog gauges.

The runtime calls three functions: `serve_metrics` once per process, `record_batch` after each
committed batch, and `refresh` on every loop turn (cheap: lag and database queries are throttled here).
Metrics live in a registry of their own, so they are right per process even when PROMETHEUS_MULTIPROC_DIR
is set for the receiver.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from core.logs import MaskingFilter, configure_logging, json_handler, mask  # noqa: F401 - re-exported
from core.metrics_access import metrics_authorized

log = logging.getLogger("smshooks.batches")

REGISTRY = CollectorRegistry(auto_describe=True)
EVENTS = Counter(
    "smshooks_processor_events_total",
    "Events consumed, by processor and outcome (handled, duplicate, skipped, dead_lettered).",
    ["processor", "outcome"], registry=REGISTRY,
)
DEAD_LETTERED = Counter(
    "smshooks_processor_dead_lettered_total", "Records sent to <topic>.dlq, by processor and source topic.",
    ["processor", "topic"], registry=REGISTRY,
)
BATCHES = Counter("smshooks_processor_batches_total", "Batches committed.", ["processor"], registry=REGISTRY)
BATCH_SECONDS = Histogram(
    "smshooks_processor_batch_duration_seconds", "Time to decode, handle and commit one batch.", ["processor"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "smshooks_processor_retries_total", "Transient failures backed off from (database or broker down).",
    ["processor"], registry=REGISTRY,
)
RELAYED = Counter(
    "smshooks_outbox_relayed_total", "Outbox rows published to Kafka.", ["processor"], registry=REGISTRY,
)
LATE_MATCHES = Counter(
    "smshooks_processor_late_matches_total",
    "Rows matched after a concurrent commit had hid them: by the post-commit re-check (settle) or the fallback sweep "
    "(a rising sweep count means re-checks are failing).",
    ["processor", "via"], registry=REGISTRY,
)
# Gauges of processes under a supervisor (PROMETHEUS_MULTIPROC_DIR set) show the latest value any live process set,
# without a pid label; a process on its own ignores the mode.
GAUGE_MODE = "livemostrecent"
LAG = Gauge(
    "smshooks_consumer_lag", "Records behind the end of each assigned partition.",
    ["processor", "topic", "partition"], registry=REGISTRY, multiprocess_mode=GAUGE_MODE,
)
PARKED = Gauge("smshooks_parked_receipts", "Receipts parked, waiting for their sent message.", registry=REGISTRY,
               multiprocess_mode=GAUGE_MODE)
UNMATCHED = Gauge(
    "smshooks_unmatched_receipts", "Receipts parked longer than unmatched_receipt_hours.", registry=REGISTRY,
    multiprocess_mode=GAUGE_MODE,
)
MISSING = Gauge(
    "smshooks_missing_receipts", "Sent messages without a final status past the vendor's age.", ["vendor"],
    registry=REGISTRY, multiprocess_mode=GAUGE_MODE,
)
OUTBOX_BACKLOG = Gauge("smshooks_outbox_backlog", "Outbox rows not yet published.", registry=REGISTRY,
                       multiprocess_mode=GAUGE_MODE)

# Database-wide gauges are refreshed by one processor only, so several processes never report them twice.
DATABASE_GAUGES_OWNER = "reconciliation"
LAG_EVERY_SECONDS = 5.0
LAG_CALL_TIMEOUT_MS = 2_000
DATABASE_EVERY_SECONDS = 30.0

_lock = threading.Lock()
_server_started = False
_previous: dict[str, dict[str, int]] = {}
_refreshed: dict[tuple[str, str], float] = {}
_lag_labels: dict[str, set[tuple[str, str]]] = {}
_missing_vendors: set[str] = set()  # vendors the missing-receipts gauge has reported


def _mask_number(match: re.Match[str]) -> str:
    """Every digit but the last 3 starred (same rule as the receiver's logs)."""
    number = match.group(0)
    keep = len(number) - 3
    return re.sub(r"\d", "*", number[:keep]) + number[keep:]


def start_metrics_server(port: int, address: str = "127.0.0.1", token: str = "",
                         readiness: Callable[[], dict[str, bool]] | None = None,
                         registry: CollectorRegistry = REGISTRY) -> bool:
    """Serve /metrics, /healthz and /readyz for this process on `port` (0 turns it off); only the first call starts it.

    /metrics needs `Authorization: Bearer <token>` when a token is set; /readyz answers 503 unless every check
    of `readiness` passes (Kafka and the database, for a processor). `registry`: what /metrics shows (a
    supervisor's shows its children's, see smshooks/supervisor.py).
    """
    global _server_started
    with _lock:
        if _server_started or port <= 0:
            return False
        server = make_server(address, port, _wsgi_app(token, readiness or dict, registry), _ThreadingWSGIServer,
                             handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
        _server_started = True
    return True


def serve_metrics(settings: Any, registry: CollectorRegistry = REGISTRY) -> None:
    """start_metrics_server on the configured port, address and token, with the processors' readiness checks; a
    port already taken is logged and processing goes on without metrics."""
    try:
        start_metrics_server(settings.metrics_port, settings.metrics_bind, settings.metrics_token,
                             processor_readiness(settings), registry=registry)
    except OSError as error:
        log.warning("metrics port %s unavailable (%s): processor metrics are not served", settings.metrics_port, error)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per scrape, so a slow readiness check never holds /metrics up."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access line per scrape on stderr."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def _wsgi_app(token: str, readiness: Callable[[], dict[str, bool]], registry: CollectorRegistry = REGISTRY):
    """The processor's small HTTP surface: Prometheus exposition and the probes."""
    exposition = make_wsgi_app(registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz":
            checks = readiness()
            ready = all(checks.values())
            return _json(start_response, "200 OK" if ready else "503 Service Unavailable",
                         {"status": "ready" if ready else "unavailable", "checks": checks})
        if not metrics_authorized(token, environ.get("HTTP_AUTHORIZATION", "")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", 'Bearer realm="metrics"')])
            return [b"metrics_token required\n"]
        return exposition(environ, start_response)

    return app


def _json(start_response, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def processor_readiness(settings: Any) -> Callable[[], dict[str, bool]]:
    """Kafka (cluster metadata) and the database (`SELECT 1`), each with its own client, each within 2 s."""
    state: dict[str, Any] = {}
    clients = threading.Lock()  # not _lock: a slow bootstrap must never hold up the counters

    def kafka_ready() -> bool:
        from kafka import KafkaAdminClient

        try:
            with clients:
                if "admin" not in state:
                    state["admin"] = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                                                      request_timeout_ms=2000, client_id="smshooks-readyz")
            state["admin"].describe_cluster()
            return True
        except Exception:  # noqa: BLE001 - any failure means not ready
            return False

    def database_ready() -> bool:
        from sqlalchemy import text

        from processors.db.engine import make_engine

        try:
            with clients:
                if "engine" not in state:
                    state["engine"] = make_engine(settings.effective_database_url)
            with state["engine"].connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001
            return False

    kafka, database = _bounded(kafka_ready), _bounded(database_ready)
    return lambda: {"kafka": kafka(), "database": database()}


def _bounded(check: Callable[[], bool], seconds: float = 2.0) -> Callable[[], bool]:
    """`check` answered within `seconds` or False; one probe in flight at a time (a bootstrap to a dead
    broker takes ~30 s, longer than any prober waits)."""
    state: dict[str, Any] = {"thread": None, "result": False}
    lock = threading.Lock()

    def run() -> None:
        state["result"] = check()

    def probe() -> bool:
        with lock:
            if state["thread"] is None or not state["thread"].is_alive():
                state["result"] = False
                state["thread"] = threading.Thread(target=run, name="readiness-probe", daemon=True)
                state["thread"].start()
            thread = state["thread"]
        thread.join(seconds)
        return not thread.is_alive() and bool(state["result"])

    return probe


def sync_counters(processor: str, stats: Any, records: list | None = None) -> dict[str, int]:
    """Add what the runtime's cumulative Stats gained since the last call to the counters; returns the gain."""
    current = {k: v for k, v in asdict(stats).items() if isinstance(v, int)}
    with _lock:
        previous = _previous.get(processor, {})
        _previous[processor] = current
    delta = {k: v - previous.get(k, 0) for k, v in current.items()}
    for outcome, key in (("handled", "handled"), ("duplicate", "duplicates"), ("skipped", "skipped"),
                         ("dead_lettered", "dead_lettered")):
        if delta.get(key, 0) > 0:
            EVENTS.labels(processor, outcome).inc(delta[key])
    if delta.get("retries", 0) > 0:
        RETRIES.labels(processor).inc(delta["retries"])
    if delta.get("relayed", 0) > 0:
        RELAYED.labels(processor).inc(delta["relayed"])
    for via, key in (("settle", "settled"), ("sweep", "swept")):
        if delta.get(key, 0) > 0:
            LATE_MATCHES.labels(processor, via).inc(delta[key])
    if delta.get("dead_lettered", 0) > 0:
        topics = sorted({record.topic for record in records or []}) or ["unknown"]
        DEAD_LETTERED.labels(processor, ",".join(topics)[:200]).inc(delta["dead_lettered"])
    return delta


def record_batch(processor: str, stats: Any, records: list, duration_seconds: float) -> None:
    """Count one committed batch from the runtime's cumulative Stats and log it as one JSON line."""
    delta = sync_counters(processor, stats, records)
    BATCHES.labels(processor).inc()
    BATCH_SECONDS.labels(processor).observe(duration_seconds)
    log.info("batch", extra={
        "processor": processor,
        "records": len(records),
        "handled": delta.get("handled", 0),
        "duplicates": delta.get("duplicates", 0),
        "skipped": delta.get("skipped", 0),
        "dead_lettered": delta.get("dead_lettered", 0),
        "duration_ms": round(duration_seconds * 1000, 2),
        "partitions": sorted({f"{record.topic}/{record.partition}" for record in records}),
        "request_ids": _request_ids(records),
    })


def _request_ids(records: list) -> list[str]:
    """Receiver request ids carried by the records (CloudEvents extension header `ce_requestid`), if any."""
    found = []
    for record in records:
        for name, value in record.headers or []:
            if name == "ce_requestid" and value:
                found.append(value.decode("utf-8", "replace"))
    return sorted(set(found))


def _due(processor: str, what: str, every: float) -> bool:
    """True at most once per `every` seconds for this processor and gauge family."""
    now = time.monotonic()
    with _lock:
        if now - _refreshed.get((processor, what), float("-inf")) < every:
            return False
        _refreshed[(processor, what)] = now
    return True


def refresh(processor: str, consumer: Any, session_factory: Any, settings: Any, stats: Any = None) -> None:
    """Sync counters, update lag (every 5 s) and database gauges (every 30 s, reconciliation only); never raises."""
    if stats is not None:
        sync_counters(processor, stats)
    if consumer is not None and _due(processor, "lag", LAG_EVERY_SECONDS):
        try:
            record_consumer_lag(processor, consumer)
        except Exception:  # noqa: BLE001 - metrics must never stop the consumer
            log.debug("consumer lag refresh failed", exc_info=True)
    if processor == DATABASE_GAUGES_OWNER and _due(processor, "database", DATABASE_EVERY_SECONDS):
        try:
            refresh_database_gauges(session_factory, settings)
        except Exception:  # noqa: BLE001
            log.debug("database gauge refresh failed", exc_info=True)


def record_consumer_lag(processor: str, consumer: Any) -> None:
    """Lag of each assigned partition: end offset minus our position; revoked partitions are dropped."""
    assigned = list(consumer.assignment())
    # bounded: without a timeout both calls can wait on the coordinator for ever and stall the consumer loop
    ends = consumer.end_offsets(assigned, timeout_ms=LAG_CALL_TIMEOUT_MS) if assigned else {}
    seen = set()
    for partition in assigned:
        labels = (partition.topic, str(partition.partition))
        seen.add(labels)
        position = consumer.position(partition, timeout_ms=LAG_CALL_TIMEOUT_MS)
        if position is None:  # not known within the timeout: keep the last reading rather than invent one
            continue
        LAG.labels(processor, *labels).set(max(0, ends.get(partition, 0) - position))
    with _lock:
        stale = _lag_labels.get(processor, set()) - seen
        _lag_labels[processor] = seen
    for labels in stale:
        if _multiprocess():
            LAG.labels(processor, *labels).set(0)  # a series cannot be removed from the shared files
        else:
            LAG.remove(processor, *labels)


def refresh_database_gauges(session_factory: Any, settings: Any) -> None:
    """Parked, unmatched and missing receipt counts and the outbox backlog, from indexed queries."""
    from sqlalchemy import func, select

    from processors.db.models import OutboxRecord, Receipt
    from processors.reports.queries import count_missing_receipts, count_unmatched_receipts

    with session_factory() as session:
        PARKED.set(session.scalar(select(func.count()).select_from(Receipt).where(Receipt.parked)) or 0)
        UNMATCHED.set(count_unmatched_receipts(session, settings))
        missing = count_missing_receipts(session, settings)
        OUTBOX_BACKLOG.set(
            session.scalar(select(func.count()).select_from(OutboxRecord).where(OutboxRecord.sent_at.is_(None))) or 0
        )
    if _multiprocess():  # a series cannot be removed from the shared files: vendors no longer missing read 0
        missing = {**dict.fromkeys(_missing_vendors, 0), **missing}
    else:
        MISSING.clear()
    _missing_vendors.update(missing)
    for vendor, count in missing.items():
        MISSING.labels(vendor).set(count)


def _multiprocess() -> bool:
    """Whether metric values go to shared files (a supervisor's child, or next to gunicorn's receiver)."""
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ

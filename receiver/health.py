"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Kafka answers, or the spool takes callbacks while it does not (`degraded`, still 200); 503 otherwise.
    Callbacks need nothing else; `smshooks.readiness` may add checks."""
    publisher = current_app.extensions["smshooks.publisher"]
    checks = {"kafka": publisher.ready()}
    spool = getattr(publisher, "spool", None)
    if spool is not None:
        checks["spool"] = spool.accepting()
    for name, check in current_app.extensions.get("smshooks.readiness", {}).items():
        checks[name] = check()
    # with a spool that takes callbacks, Kafka being away (or behind) degrades the receiver, it does not stop it
    needed = [ok for name, ok in checks.items() if not (name == "kafka" and checks.get("spool"))]
    ready = all(needed)
    behind = not checks["kafka"] or (spool is not None and spool.holds_entries())
    status = ("degraded" if behind else "ready") if ready else "unavailable"
    response = jsonify({"status": status, "checks": checks})
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = str(current_app.extensions["smshooks.settings"].retry_after_seconds)
    return response

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
    """Kafka answers (callbacks need nothing else; `smshooks.readiness` may add checks); 503 otherwise."""
    checks = {"kafka": current_app.extensions["smshooks.publisher"].ready()}
    for name, check in current_app.extensions.get("smshooks.readiness", {}).items():
        checks[name] = check()
    ready = all(checks.values())
    response = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = str(current_app.extensions["smshooks.settings"].retry_after_seconds)
    return response

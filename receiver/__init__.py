"""The receiver: a Flask app that turns vendor callbacks into events on Kafka. No database here."""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from core.settings import Settings, load_settings
from receiver.proxies import TrustedProxies

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class ReceiverFlask(Flask):
    """Flask that decides once per function, not on every call, that a view or hook needs no async wrapper.

    Stock `ensure_sync` runs `inspect.iscoroutinefunction` for the view and every request hook of every
    request (7 times per callback); the receiver has no async views, and a coroutine is still wrapped.
    """

    def ensure_sync(self, func):
        cache = self.__dict__.setdefault("_sync_functions", {})
        synced = cache.get(func)
        if synced is None:
            synced = super().ensure_sync(func)
            if len(cache) < 1024:  # views and hooks are a fixed set; the bound keeps an odd caller from growing it
                cache[func] = synced
        return synced


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """App factory: settings, publisher, routes and error handlers; opens no sockets."""
    from receiver import health, observability, openapi, views
    from receiver.ratelimit import CallbackRateLimiter
    from receiver.spooling import make_spooling_publisher
    from receiver.vendors import auth_catalog, load_adapters

    test_config = dict(test_config or {})
    publisher = test_config.pop("publisher", None)
    settings: Settings = test_config.pop("settings", None) or load_settings(overrides=test_config,
                                                                                 vendors=auth_catalog())
    app = ReceiverFlask(__name__)
    # `//` in a path must not be answered with a 308 redirect (undocumented; vendors do not follow it): 404
    app.url_map.merge_slashes = False
    app.json.sort_keys = False
    app.extensions["smshooks.settings"] = settings
    app.extensions["smshooks.adapters"] = load_adapters()
    app.extensions["smshooks.publisher"] = publisher or make_spooling_publisher(settings)
    app.extensions["smshooks.rate_limiter"] = CallbackRateLimiter(settings)
    if settings.trusted_proxy_hops:
        # Only the configured number of proxies may speak for the client address; never a raw X-Forwarded-For.
        app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxy_hops)  # type: ignore[method-assign]

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
        # not a secret: a fast random UUID4 rather than one read from the OS entropy pool per request
        fresh = uuid.UUID(int=random.getrandbits(128), version=4)
        g.request_id = incoming if REQUEST_ID.match(incoming) else str(fresh)

    @app.before_request
    def rate_limit() -> None:
        req = request._get_current_object()
        if req.path.startswith("/v1/callbacks/"):
            vendor = (req.view_args or {}).get("vendor", "")
            app.extensions["smshooks.rate_limiter"].check(vendor, req.remote_addr or "")

    @app.after_request
    def add_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    from receiver.errors import ApiError

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return views.error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code == 405:
            allowed = error.valid_methods or []
            return views.error_response_for(405, headers={"Allow": ", ".join(allowed)})
        if error.code == 404:
            return views.error_response_for(404)
        from receiver.errors import ApiError as Generic

        generic = Generic(error.description or "", code=(error.name or "error").lower().replace(" ", "_"))
        generic.status = error.code or 500
        return views.error_response(generic)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unhandled error")
        return views.error_response_for(500)

    observability.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    _register_optional(app)
    return app


def _register_optional(app: Flask) -> None:
    """Blueprints added by later modules (sent messages) when present."""
    import importlib

    try:
        sent = importlib.import_module("receiver.sent")
    except ModuleNotFoundError as exc:
        if exc.name != "receiver.sent":
            raise
        return
    app.register_blueprint(sent.bp)

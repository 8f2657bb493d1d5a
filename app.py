"""gunicorn target: `gunicorn app:app`. The receiver, plus the read API when a database is configured."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The receiver app with the read API and reports mounted (they open the database lazily, on first use)."""
    from receiver import create_app as create_receiver
    from smshooks.api import init_app as init_read_api

    app = create_receiver(test_config)
    init_read_api(app)
    return app


app = create_app()

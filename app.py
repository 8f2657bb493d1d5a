"""gunicorn target: `gunicorn app:app`. The receiver, plus the read API when a database is configured."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The receiver app, with the read API and reports mounted when the processors package provides them."""
    from receiver import create_app as create_receiver

    app = create_receiver(test_config)
    try:
        from processors.api import init_app as init_read_api
    except ModuleNotFoundError as exc:
        if exc.name != "processors.api":
            raise
    else:
        init_read_api(app)
    return app


app = create_app()

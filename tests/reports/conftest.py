"""Fixtures of the report tests: the known dataset loaded on SQLite and PostgreSQL, a read-API client."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from receiver import create_app
from receiver.publisher import Publisher
from smshooks.api import init_app
from tests.reports import dataset


class IdlePublisher(Publisher):
    """The read API publishes nothing; this stands in for Kafka so the tests need no broker."""

    def publish(self, envelopes) -> None:
        raise AssertionError("the read API must not publish")

    def publish_raw(self, topic, key, headers, value) -> None:
        raise AssertionError("the read API must not publish")

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to close."""


@pytest.fixture
def loaded(database_url):
    """The dataset written through the processors' handlers; yields the settings that go with it."""
    return dataset.load(database_url)


@pytest.fixture
def loaded_sqlite(sqlite_url):
    """The dataset on SQLite only (for tests whose subject is not the SQL)."""
    return dataset.load(sqlite_url)


@pytest.fixture
def connect():
    """Open read connections on a settings' database; all engines are disposed at the end."""
    engines = []

    def _connect(settings):
        engine = create_engine(settings.effective_database_url)
        engines.append(engine)
        return engine.connect()

    yield _connect
    for engine in engines:
        engine.dispose()


def make_client(settings):
    """A test client of the receiver app with the read API mounted, as app.py does."""
    app = create_app({"settings": settings, "publisher": IdlePublisher()})
    init_app(app)
    return app


@pytest.fixture
def api(loaded_sqlite):
    """A read-API client on the SQLite dataset, and the bearer header."""
    app = make_client(loaded_sqlite)
    yield app.test_client()
    engine = app.extensions.get("smshooks.read_engine")
    if engine is not None:
        engine.dispose()


AUTH = {"Authorization": "Bearer report-token"}

"""Fixtures of the processors tests: migrated databases and per-test settings."""

from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy.orm import Session

from core.events import Envelope
from processors.db import upgrade
from processors.db.engine import make_engine, make_session_factory
from processors.db.uow import UnitOfWork
from receiver.vendors import canonical_message_id
from tests.processors.factories import settings_for


class FakeUnitOfWork(UnitOfWork):
    """The real unit of work over a real database, also remembering outbox envelopes for assertions."""

    def __init__(self, session_factory, settings, canonical_id) -> None:
        super().__init__(session_factory, settings, canonical_id)
        self.published: list[Envelope] = []

    def add_outbox(self, envelope: Envelope) -> None:
        super().add_outbox(envelope)
        self.published.append(envelope)


@pytest.fixture
def migrated_url(database_url):
    """A fresh database (SQLite and PostgreSQL in turn) at the latest migration."""
    upgrade(database_url)
    return database_url


@pytest.fixture
def engine(migrated_url):
    """An engine on the migrated database."""
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(migrated_url):
    """A session for reading results, on a plain engine (deferred transactions never block writers)."""
    reader = sqlalchemy.create_engine(migrated_url)
    with Session(reader) as session:
        yield session
    reader.dispose()


@pytest.fixture
def make_uow(engine):
    """Build FakeUnitOfWork instances with optional setting overrides."""

    def _make(**overrides) -> FakeUnitOfWork:
        settings = settings_for("127.0.0.1:1", "", str(engine.url), **overrides)
        return FakeUnitOfWork(make_session_factory(engine), settings, canonical_message_id)

    return _make

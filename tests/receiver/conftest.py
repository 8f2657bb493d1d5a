"""Receiver fixtures: the real app against the real broker, and helpers to read what it published."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.events import Envelope, topic_name
from receiver import create_app
from tests.conftest import consume_all


class Published:
    """Reads back what the receiver put on Kafka under this test's prefix."""

    def __init__(self, bootstrap: str, prefix: str):
        self.bootstrap, self.prefix = bootstrap, prefix

    def records(self, topic: str, expected: int = 1, timeout: float = 10.0):
        return consume_all(self.bootstrap, topic_name(self.prefix, topic), expected, timeout)

    def events(self, topic: str, expected: int = 1) -> list[Envelope]:
        """Decoded events, in partition/offset order."""
        return [
            Envelope.decode(r.topic, r.key, r.headers, r.value)
            for r in self.records(topic, expected)
        ]

    def rejected(self, expected: int = 1) -> list[dict]:
        """Decoded `sms.callbacks.rejected` values, with the body decoded."""
        values = []
        for record in self.records("sms.callbacks.rejected", expected):
            value = json.loads(record.value)
            value["body"] = base64.b64decode(value["body_base64"])
            value["record_headers"] = dict(record.headers)
            values.append(value)
        return values


@contextmanager
def client_maker(factory: Callable[[dict[str, Any]], Flask], **defaults: Any) -> Iterator[Callable[..., FlaskClient]]:
    """`make(**overrides)`: a test client of an app built by `factory` from defaults + overrides; every app's
    publisher is closed at the end."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> FlaskClient:
        app = factory({**defaults, **overrides})
        apps.append(app)
        return app.test_client()

    try:
        yield make
    finally:
        for app in apps:
            app.extensions["smshooks.publisher"].close()


@pytest.fixture
def make_client(broker, topic_prefix):
    """Build a test client with settings overrides (vendors, limits, ...) against the real broker."""
    with client_maker(create_app, kafka_bootstrap_servers=broker.bootstrap_servers, topic_prefix=topic_prefix,
                      topic_partitions=3, publish_timeout_seconds=5) as make:
        yield make


@pytest.fixture
def client(make_client):
    """A client with default settings (no auth configured)."""
    return make_client()


@pytest.fixture
def published(broker, topic_prefix):
    return Published(broker.bootstrap_servers, topic_prefix)

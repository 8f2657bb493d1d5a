"""Shared fixtures: a real Apache Kafka (KRaft) broker per test session, real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from smshooks.broker import LocalBroker, free_port

# The receiver spools callbacks when Kafka is slow or away (production default). Tests that expect a 503, or read a
# topic right after a 200, run without it; the spool's own tests turn it on (tests/reliability/test_spool.py).
os.environ.setdefault("SMSHOOKS_SPOOL_ENABLED", "0")

PG_URL = os.environ.get("SMSHOOKS_TEST_PG_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """A real Apache Kafka node on a free port (smshooks/broker.py), started here and stopped at the end."""
    log = tmp_path_factory.mktemp("broker") / "kafka.log"
    # 768 MB: a worker's tests create topics by the thousand over a run (each test's are deleted after it)
    running = LocalBroker(free_port(), heap="768m").start(log)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def broker_admin(broker):
    """One admin client on the session broker, for deleting each test's topics after it."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, client_id="tests-cleanup")
    yield admin
    admin.close()


@pytest.fixture
def topic_prefix(request):
    """A fresh topic prefix per test, so tests never read each other's events; its topics on the session broker are
    deleted afterwards, or a run's thousands of partitions exhaust the broker's heap."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    admin = request.getfixturevalue("broker_admin") if "broker" in request.fixturenames else None
    yield prefix
    if admin is not None:
        names = [name for name in admin.list_topics() if name.startswith(prefix)]
        if names:
            admin.delete_topics(names, timeout_ms=30_000)


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 10.0):
    """Read records of a topic from the beginning until `expected` arrived or the timeout passed."""
    import time

    from kafka import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=500)
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            found = consumer.partitions_for_topic(topic)
            if found:
                partitions = [TopicPartition(topic, p) for p in sorted(found)]
            else:
                time.sleep(0.1)
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records = []
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        # one more short poll catches records beyond the expected count
        for batch in consumer.poll(timeout_ms=300).values():
            records.extend(batch)
        return records
    finally:
        consumer.close()


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(PG_URL)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def postgres_server():
    """The machine's PostgreSQL; a missing server fails loudly unless SMSHOOKS_TEST_SKIP_PG=1."""
    reason = _pg_available()
    if reason:
        if os.environ.get("SMSHOOKS_TEST_SKIP_PG") == "1":
            pytest.skip(f"PostgreSQL NOT TESTED (SMSHOOKS_TEST_SKIP_PG=1): {reason}")
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {reason}. Start it or set SMSHOOKS_TEST_SKIP_PG=1.")
    return PG_URL


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy

    name = f"smshooks_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path):
    """A fresh SQLite database file for one test."""
    return f"sqlite:///{tmp_path / 'smshooks.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """Run a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


def git_root() -> Path:
    """The repository root."""
    return Path(subprocess.check_output(["git", "rev-parse", "--show-toplevel"], text=True).strip())

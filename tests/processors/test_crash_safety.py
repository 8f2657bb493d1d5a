"""SIGKILL the processors mid-stream, restart them, and compare the database with a crash-free run.

The stream (~2000 events) is fed in three phases so that the reference and the crashed run see the
same cross-topic order: sent messages (part 1); receipts, inbound messages and clicks (receipts for
part 2 park); sent messages (part 2, which re-match the parked receipts). Within a phase Kafka keys
keep per-message and per-subscriber order, so both runs must end in exactly the same state.
The outbox relay is at-least-once: after a crash a status event may be published twice with the same
ce_id. We assert the distinct ce_ids on the output topic equal the expected set and report duplicates.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.events import TOPIC_MESSAGE_STATUS, TOPIC_OPT_OUTS, Envelope, topic_name
from processors.db import upgrade
from processors.db.models import (
    Click,
    OptOutHistory,
    OptOutState,
    OutboxRecord,
    ProcessedEvent,
    Receipt,
    SentMessage,
)
from tests.conftest import consume_all, git_root
from tests.processors.factories import (
    click,
    create_all_topics,
    inbound,
    publish,
    receipt,
    running,
    sent,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.slow

VENDORS = ("twilio", "fortytwo", "sinch")
PATTERNS = (
    ("pending", "delivered"),
    ("delivered",),
    ("delivered", "pending"),  # late intermediate
    ("failed", "delivered"),  # conflicting finals
    ("pending", "unknown", "expired"),
)


def message_id(vendor: str, n: int) -> str:
    if vendor == "sinch":
        return f"01ARZ3NDEKTSV4RRFFQ69G{n:04d}:4477009{n:05d}"
    return f"SM{n:06x}" if vendor == "twilio" else f"{n:09d}"


def build_stream(seed: int = 7):
    """Three phases of payloads, deterministic for a seed."""
    rng = random.Random(seed)
    messages = [(VENDORS[n % 3], message_id(VENDORS[n % 3], n), n) for n in range(700)]
    part1, part2 = messages[:500], messages[500:]

    def sent_of(batch):
        return [
            sent(v, m, recipient=f"+4477009{n:05d}", batch_id=f"B{n // 50}", campaign_id=f"C{n % 4}")
            for v, m, n in batch
        ]

    phase_b = []
    for vendor, mid, n in messages:
        for step, status in enumerate(rng.choice(PATTERNS)):
            phase_b.append(receipt(vendor, mid, status, 10 + n + step))
        if rng.random() < 0.1:
            phase_b.append(phase_b[-1])  # a vendor retry: same event id
    phase_b += [receipt("twilio", f"SMorphan{n}", "delivered", 5 + n) for n in range(30)]
    keywords = ("STOP", "start", "HELP", "hello", "Stop All", "opt-out", "UNSTOP")
    phase_b += [
        inbound(rng.choice(keywords), from_=f"+4477001{n % 40:05d}", to=("+447700900999", "+447700900888")[n % 2], n=n)
        for n in range(150)
    ]
    phase_b += [click(v, m, n=n) for v, m, n in rng.sample(messages, 100)]
    rng.shuffle(phase_b)  # interleave topics; per-key order is kept below by a stable sort on key
    phase_b.sort(key=lambda p: Envelope.wrap(p).key)  # publish each key's events in their creation order
    return sent_of(part1), phase_b, sent_of(part2)


PHASES = (("sent-messages",), ("reconciliation", "opt-outs", "clicks"), ("sent-messages",))


def distinct_ids(payloads) -> int:
    return len({Envelope.wrap(p).id for p in payloads})


def counts(url: str, prefix: str) -> tuple[int, int]:
    """(processed events of every group, unsent outbox rows)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with Session(engine) as session:
            processed = session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0
            unsent = session.scalar(select(func.count()).where(OutboxRecord.sent_at.is_(None))) or 0
            return processed, unsent
    finally:
        engine.dispose()


def start_processors(settings, names, log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        {
            "SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "SMSHOOKS_TOPIC_PREFIX": settings.topic_prefix,
            "SMSHOOKS_DATABASE_URL": settings.database_url,
            "SMSHOOKS_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "SMSHOOKS_CONSUMER_MAX_POLL_INTERVAL_MS": "2000",
            # Kafka refuses a session timeout under group.min.session.timeout.ms (6 s by default)
            "SMSHOOKS_CONSUMER_SESSION_TIMEOUT_MS": "6000",
            "SMSHOOKS_CONSUMER_HEARTBEAT_INTERVAL_MS": "500",
            "SMSHOOKS_CONSUMER_MAX_POLL_RECORDS": "40",
            "SMSHOOKS_CONSUMER_POLL_TIMEOUT_MS": "100",
            "SMSHOOKS_LOG_LEVEL": os.environ.get("CRASH_TEST_LOG_LEVEL", "WARNING"),
        }
    )
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "smshooks", "process", *names], env=env, cwd=git_root(), stdout=out,
            stderr=subprocess.STDOUT,
        )


def run_phase_with_kills(settings, names, target: int, kills: int, rng, log: Path) -> int:
    """Run a phase in subprocesses, SIGKILL it `kills` times mid-stream; returns the mid-stream kills."""
    url = settings.database_url
    mid_stream = 0
    for _ in range(kills):
        before, _unsent = counts(url, settings.topic_prefix)
        threshold = before + max(1, int((target - before) * rng.uniform(0.1, 0.6)))
        process = start_processors(settings, names, log)
        started = time.monotonic()
        try:
            wait_for(lambda threshold=threshold: counts(url, "")[0] >= threshold, timeout=60, interval=0.01)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        if counts(url, "")[0] < target:
            mid_stream += 1
        print(f"{names}: killed after {time.monotonic() - started:.1f}s at {counts(url, '')[0]}/{target}")
    process = start_processors(settings, names, log)
    try:
        wait_for(lambda: counts(url, "") == (target, 0), timeout=90)
    except AssertionError as error:
        raise AssertionError(f"{names}: counts {counts(url, '')} never reached ({target}, 0); see {log}") from error
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, f"graceful stop failed with {code}; see {log}"
    return mid_stream


def snapshot(url: str, prefix: str) -> dict[str, list]:
    """Every table as sorted tuples of natural keys and values, minus surrogate ids, row versions (how many
    UPDATEs it took, which depends on how batches fell) and our own clock."""
    engine = sqlalchemy.create_engine(url)
    try:
        with Session(engine) as session:
            sent_key = {s.id: (s.vendor, s.message_id) for s in session.scalars(select(SentMessage))}

            def rows(model, skip=(), mapped=("sent_message_id",)):
                out = []
                for row in session.scalars(select(model)):
                    values = []
                    for column in model.__table__.columns:
                        if column.name in ("id", "version", *skip):
                            continue
                        value = getattr(row, column.key)
                        if column.name in mapped:
                            value = sent_key.get(value)
                        if isinstance(value, str) and prefix:
                            value = value.replace(prefix, "")
                        values.append(repr(value))
                    out.append(tuple(values))
                return sorted(out)

            return {
                "sent_messages": rows(SentMessage),
                "receipts": rows(Receipt),
                "clicks": rows(Click),
                "opt_out_state": rows(OptOutState),
                "opt_out_history": rows(OptOutHistory),
                "processed_events": rows(ProcessedEvent, skip=("processed_at",)),
                "outbox": rows(OutboxRecord, skip=("created_at", "sent_at")),
            }
    finally:
        engine.dispose()


@pytest.fixture
def reference_url(database_url, tmp_path):
    """A second fresh database of the same kind, for the crash-free run."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'reference.db'}"
        return
    name = f"smshooks_test_ref_{os.urandom(6).hex()}"
    admin = sqlalchemy.create_engine(database_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    yield database_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_sigkill_mid_stream_ends_identical_to_a_clean_run(broker, database_url, reference_url, tmp_path):
    upgrade(database_url)
    upgrade(reference_url)
    suffix = os.urandom(4).hex()
    clean = settings_for(broker.bootstrap_servers, f"clean{suffix}.", reference_url)
    crashed = settings_for(broker.bootstrap_servers, f"crash{suffix}.", database_url)
    phases = build_stream()
    assert sum(len(p) for p in phases) >= 2000
    for settings in (clean, crashed):
        create_all_topics(settings)

    rng = random.Random(11)
    target = 0
    mid_stream_kills = 0
    log = tmp_path / "processors.log"
    for payloads, names, kills in zip(phases, PHASES, (1, 1, 1), strict=True):
        target += distinct_ids(payloads)
        for settings in (clean, crashed):
            publish(settings, payloads)
        started = time.monotonic()
        with running(clean, names):
            wait_for(lambda target=target: counts(reference_url, "") == (target, 0), timeout=90)
        print(f"{names}: clean run took {time.monotonic() - started:.1f}s")
        started = time.monotonic()
        mid_stream_kills += run_phase_with_kills(crashed, names, target, kills, rng, log)
        print(f"{names}: crashing run took {time.monotonic() - started:.1f}s")
    assert mid_stream_kills >= 3, "the kills did not land mid-stream"

    expected, actual = snapshot(reference_url, clean.topic_prefix), snapshot(database_url, crashed.topic_prefix)
    for table in expected:
        assert actual[table] == expected[table], f"{table} differs after crashes"
    assert len(expected["receipts"]) > 1000 and len(expected["opt_out_history"]) > 50

    # Output events: every expected ce_id exactly once as a set; re-sends after a crash keep their id.
    engine = sqlalchemy.create_engine(database_url)
    with Session(engine) as session:
        outbox = session.execute(select(OutboxRecord.topic, OutboxRecord.event_id)).all()
    engine.dispose()
    for topic in (TOPIC_MESSAGE_STATUS, TOPIC_OPT_OUTS):
        name = topic_name(crashed.topic_prefix, topic)
        wanted = {event_id for t, event_id in outbox if t == name}
        records = consume_all(broker.bootstrap_servers, name, len(wanted), timeout=30)
        ids = [dict(r.headers)["ce_id"].decode() for r in records]
        assert set(ids) == wanted
        print(f"{topic}: {len(wanted)} events, {len(ids) - len(set(ids))} re-sent duplicates (same ce_id)")

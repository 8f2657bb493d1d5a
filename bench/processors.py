"""Receipts reconciled per second on PostgreSQL with 10k and 1M sent messages, versus plain SQL.

Usage: .venv/bin/python bench/processors.py [--quick] [--receipts N] [--pg URL]
Measures the processors' batch path (dedupe, handler, state machine, history, outbox, processed
events, one transaction per 500 events, then the batch's settle re-check) without Kafka, so the figure is
the database-side cost.
Last three lines: cost_1m_vs_10k=<per-receipt time at 1M / at 10k>,
processor_vs_sql_baseline=<processor rate / plain SQL rate at the large size> and
aggregates_rate_drop=<1 - processor rate / its rate with report aggregate updates switched off> (an A/B).

Fairness between the two sizes and the two contenders: after the COPY the database is VACUUM ANALYZEd
(hint bits and the visibility map set, statistics fresh) and checkpointed, autovacuum is off on the bench
tables (at 10k it would otherwise start mid-run and at 1M never), the tables and indexes are pre-warmed,
a warm-up pass of each contender runs before timing, receipts are a random sample over the whole id range,
both sizes touch the same number of rows, and processor and baseline alternate in rounds so drift hits both.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import threading
import time
from collections import namedtuple
from datetime import UTC, datetime, timedelta
from pathlib import Path

# This file is named like the package it measures: keep its folder off the path so `processors` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from bench.databases import create_database, drop_database  # noqa: E402
from core.events import DeliveryReceipt, Envelope  # noqa: E402
from core.settings import load_settings  # noqa: E402
from processors.clients import KafkaClients  # noqa: E402
from processors.db import aggregate_deltas, upgrade  # noqa: E402
from processors.db.engine import make_engine, make_session_factory  # noqa: E402
from processors.registry import PROCESSORS  # noqa: E402
from processors.runtime import ProcessorLoop  # noqa: E402
from receiver.vendors import canonical_message_id  # noqa: E402

Record = namedtuple("Record", "topic partition offset")
BATCH = 500
WARM_UP = 500
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def message_id(n: int) -> str:
    return f"sm{n:010x}"


def bulk_load(url: str, count: int) -> float:
    """COPY `count` sent messages; returns seconds."""
    started = time.perf_counter()
    sent_at = (NOW - timedelta(hours=1)).isoformat()
    with (
        psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection,
        connection.cursor() as cursor,
    ):
        columns = (
            "vendor, message_id, raw_message_id, recipient, parts, sent_at, received_at, status, conflict, "
            "source_event_id, batch_id"
        )
        with cursor.copy(f"COPY sent_messages ({columns}) FROM STDIN") as copy:
            chunk = io.StringIO()
            for n in range(count):
                mid = message_id(n)
                chunk.write(
                    f"twilio\t{mid}\t{mid}\t4477{n:08d}\t1\t{sent_at}\t{sent_at}\tsubmitted\tf\tload-{n}"
                    f"\tB{n // 1000}\n"
                )
                if n % 50000 == 49999:
                    copy.write(chunk.getvalue())
                    chunk = io.StringIO()
            copy.write(chunk.getvalue())
    return time.perf_counter() - started


BENCH_TABLES = ("sent_messages", "receipts", "outbox", "processed_events")


def settle(url: str) -> None:
    """VACUUM ANALYZE, checkpoint, autovacuum off on the bench tables, and tables plus indexes pre-warmed."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")
        for table in BENCH_TABLES:
            connection.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        try:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        except psycopg.Error:
            connection.execute("SELECT count(*) FROM sent_messages")  # at least the heap into the caches
            return
        relations = connection.execute(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')"
        ).fetchall()
        for (relation,) in relations:
            connection.execute("SELECT pg_prewarm(%s)", (relation,))


def receipts(numbers: list[int], salt: str) -> list[Envelope]:
    return [
        Envelope.wrap(
            DeliveryReceipt(
                vendor="twilio",
                message_id=message_id(n).upper(),
                status="delivered",
                vendor_status=f"delivered-{salt}",
                received_at=NOW,
                occurred_at=NOW,
            )
        )
        for n in numbers
    ]


def run_processor(url: str, envelopes: list[Envelope], *, aggregates: bool = True) -> float:
    """Receipts per second through the processors' batch path (without report aggregate updates for the A/B)."""
    aggregate_deltas.ENABLED = aggregates
    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = make_engine(url)
    loop = ProcessorLoop(PROCESSORS["reconciliation"], settings, threading.Event(), make_session_factory(engine),
                         clients=KafkaClients(settings), canonical_id=canonical_message_id)
    decoded = [(Record("bench", 0, offset), envelope) for offset, envelope in enumerate(envelopes)]
    started = time.perf_counter()
    for start in range(0, len(decoded), BATCH):
        loop._settle(loop._apply(decoded[start : start + BATCH]))  # the batch, then its post-commit re-check
    elapsed = time.perf_counter() - started
    aggregate_deltas.ENABLED = True
    engine.dispose()
    assert loop.stats.handled == len(envelopes)
    return len(envelopes) / elapsed


def run_sql_baseline(url: str, envelopes: list[Envelope]) -> float:
    """The same lookups and writes as hand-written SQL: dedupe, find, history, update, outbox, processed."""
    started = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        for start in range(0, len(envelopes), BATCH):
            batch = envelopes[start : start + BATCH]
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT event_id FROM processed_events WHERE consumer_group = %s AND event_id = ANY(%s)",
                    ("baseline", [e.id for e in batch]),
                )
                seen = {row[0] for row in cursor.fetchall()}
                for envelope in batch:
                    if envelope.id in seen:
                        continue
                    payload = envelope.payload
                    mid = payload.message_id.lower()
                    cursor.execute(
                        "SELECT id, status FROM sent_messages WHERE vendor = %s AND message_id = %s",
                        (payload.vendor, mid),
                    )
                    sent_id, status = cursor.fetchone()
                    cursor.execute(
                        "INSERT INTO receipts (event_id, vendor, message_id, raw_message_id, status, vendor_status,"
                        " occurred_at, received_at, raw, sent_message_id, parked, outcome, previous_status)"
                        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,false,'applied',%s)",
                        (
                            envelope.id,
                            payload.vendor,
                            mid,
                            payload.message_id,
                            payload.status,
                            payload.vendor_status,
                            payload.occurred_at,
                            payload.received_at,
                            envelope.value().decode(),
                            sent_id,
                            status,
                        ),
                    )
                    cursor.execute(
                        "UPDATE sent_messages SET status = %s, status_changed_at = %s, final_at = %s,"
                        " delivered_at = %s WHERE id = %s",
                        (payload.status, payload.received_at, payload.received_at, payload.received_at, sent_id),
                    )
                    cursor.execute(
                        "INSERT INTO outbox (event_id, topic, key, headers, value, created_at)"
                        " VALUES (%s, 'sms.message-status', %s, '[]', %s, now())",
                        (envelope.id, envelope.key, envelope.value().decode()),
                    )
                cursor.executemany(
                    'INSERT INTO processed_events (consumer_group, event_id, topic, partition, "offset",'
                    " processed_at) VALUES ('baseline', %s, 'bench', 0, 0, now())",
                    [(e.id,) for e in batch if e.id not in seen],
                )
    return len(envelopes) / (time.perf_counter() - started)


def measure(server: str, size: int, count: int, rounds: int = 3, *, ab: bool = False) -> tuple[float, float, float]:
    """Receipts/s of the processor, of plain SQL and (with `ab`, else 0) of the processor without report aggregate
    updates over `size` sent messages, `count` receipts each."""
    url = create_database(server)
    try:
        upgrade(url)
        load = bulk_load(url, size)
        settle(url)
        rng = random.Random(size)
        contenders = 3 if ab else 2
        picked = rng.sample(range(size), contenders * (count + WARM_UP))
        run_processor(url, receipts(picked[:WARM_UP], "warm-p"))
        run_sql_baseline(url, receipts(picked[WARM_UP : 2 * WARM_UP], "warm-b"))
        if ab:
            run_processor(url, receipts(picked[2 * WARM_UP : 3 * WARM_UP], "warm-a"), aggregates=False)
        timed = picked[contenders * WARM_UP :]
        per_round = count // rounds
        processor_seconds = baseline_seconds = unaggregated_seconds = 0.0
        for index in range(rounds):  # alternate so that any drift (bloat, caches) hits all alike
            chunk = timed[contenders * index * per_round : contenders * (index + 1) * per_round]
            processor_seconds += per_round / run_processor(url, receipts(chunk[:per_round], "p"))
            baseline_seconds += per_round / run_sql_baseline(url, receipts(chunk[per_round : 2 * per_round], "b"))
            if ab:
                unaggregated_seconds += per_round / run_processor(url, receipts(chunk[2 * per_round :], "a"),
                                                                  aggregates=False)
        processor, baseline = rounds * per_round / processor_seconds, rounds * per_round / baseline_seconds
        unaggregated = rounds * per_round / unaggregated_seconds if ab else 0.0
        without = f" (without report aggregates {unaggregated:.0f})" if ab else ""
        print(
            f"sent_messages={size}: loaded in {load:.1f}s; processor {processor:.0f} receipts/s{without}; "
            f"plain SQL {baseline:.0f} receipts/s"
        )
        return processor, baseline, unaggregated
    finally:
        drop_database(server, url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100k instead of 1M sent messages")
    parser.add_argument("--receipts", type=int, default=4500, help="timed receipts per contender and size")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    large = 100_000 if args.quick else 1_000_000
    small_rate, _, _ = measure(args.pg, 10_000, args.receipts)
    large_rate, large_baseline, large_unaggregated = measure(args.pg, large, args.receipts, ab=True)
    print(f"large size = {large} sent messages; receipts per run = {args.receipts}")
    print(f"cost_1m_vs_10k={small_rate / large_rate:.3f}")
    print(f"processor_vs_sql_baseline={large_rate / large_baseline:.3f}")
    # A/B: the same batch path with report aggregate updates switched off (target: at most a 10% drop)
    print(f"aggregates_rate_drop={1 - large_rate / large_unaggregated:.3f}")


if __name__ == "__main__":
    main()

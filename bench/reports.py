"""Bench: the reconciliation report over 1M and 100k sent messages of the same 30 days on PostgreSQL.

    python bench/reports.py [--rows 1000000] [--small-rows 100000] [--pg-url postgresql+psycopg://...]

For each size: a scratch database, migrated, bulk-loaded (sent messages, receipts, clicks, opt-outs) with COPY,
its report aggregates rebuilt from the rows (`smshooks report rebuild-aggregates`' function: COPY bypasses the
processors that keep them), then the report (JSON, grouped by vendor and day) timed; at the large size also
`SELECT vendor, day, count(*) ... GROUP BY` over the same rows. Last lines: `report_1m_vs_100k=<ratio>` (the
report follows the groups, not the messages) and `report_vs_groupby=<ratio>` at the large size.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
import sqlalchemy  # noqa: E402

from bench.databases import create_database, drop_database  # noqa: E402
from core.settings import load_settings  # noqa: E402
from processors.db import upgrade  # noqa: E402
from processors.reports.aggregates import rebuild  # noqa: E402
from processors.reports.formats import to_json  # noqa: E402
from processors.reports.reconciliation import ReportRequest, build_report  # noqa: E402

VENDORS = ("twilio", "sinch", "vonage", "mobivate")
COUNTRIES = ("GB", "US", "FR", "DE", "ES", "IT", "NL", "IE")
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
NOW = START + timedelta(days=DAYS + 2)
# (status, share): what the last receipt left each message at
STATUSES = (("delivered", 0.85), ("failed", 0.05), ("expired", 0.02), ("rejected", 0.01), ("unknown", 0.02),
            ("pending", 0.03), ("submitted", 0.02))
CHUNK = 20_000

SENT_COLUMNS = ("vendor", "message_id", "raw_message_id", "batch_id", "campaign_id", "client_ref", "recipient",
                "sender", "parts", "sent_at", "received_at", "country_iso2", "status", "status_changed_at",
                "final_at", "first_receipt_received_at", "delivered_at", "conflict", "source_event_id")
RECEIPT_COLUMNS = ("event_id", "vendor", "message_id", "raw_message_id", "status", "vendor_status", "received_at",
                   "raw", "sent_message_id", "parked", "outcome", "previous_status")
CLICK_COLUMNS = ("event_id", "vendor", "message_id", "sent_message_id", "recipient", "url", "clicked_at",
                 "received_at", "raw")
OPT_OUT_COLUMNS = ("msisdn", "scope", "scope_key", "sender", "action", "keyword", "changed", "vendor",
                   "source_event_id", "received_at")


def ts(value: datetime | None) -> str:
    """COPY text form of a timestamp (\\N for NULL)."""
    return "\\N" if value is None else value.isoformat()


def generate(rows: int, seed: int = 7):
    """Yield (table, line) pairs for every row of the dataset, deterministic for a seed."""
    rng = random.Random(seed)
    weights = [share for _, share in STATUSES]
    names = [name for name, _ in STATUSES]
    receipt_number = 0
    for index in range(1, rows + 1):
        vendor = VENDORS[index % len(VENDORS)]
        sent_at = START + timedelta(seconds=rng.randrange(DAYS * 86400))
        received_at = sent_at + timedelta(milliseconds=rng.randrange(50, 900))
        status = rng.choices(names, weights)[0]
        delay = timedelta(seconds=rng.expovariate(1 / 20))
        final = status in ("delivered", "failed", "expired", "rejected")
        first = received_at + delay if status != "submitted" else None
        conflict = final and rng.random() < 0.001
        message_id = f"m{index:09d}"
        yield "sent", "\t".join([
            vendor, message_id, message_id, f"b{index // 100}", f"c{index % 20}", "\\N",
            f"4477{index:08d}", f"4470000000{index % 5}", "1", ts(sent_at), ts(received_at),
            COUNTRIES[index % len(COUNTRIES)], status, ts(first), ts(first if final else None), ts(first),
            ts(first if status == "delivered" else None), "t" if conflict else "f", str(uuid.UUID(int=index)),
        ])
        if status != "submitted":
            for receipt_status, outcome, previous in (("pending", "applied", "submitted"), (status, "applied",
                                                                                            "pending")):
                if receipt_status == "pending" and (status == "pending" or rng.random() < 0.7):
                    continue
                receipt_number += 1
                yield "receipts", "\t".join([
                    str(uuid.UUID(int=(1 << 64) + receipt_number)), vendor, message_id, message_id,
                    receipt_status, receipt_status.upper(), ts(first), "{}", str(index), "f", outcome, previous,
                ])
        if rng.random() < 0.01:  # a parked receipt nobody sent
            receipt_number += 1
            yield "receipts", "\t".join([
                str(uuid.UUID(int=(1 << 64) + receipt_number)), vendor, f"x{index}", f"x{index}", "delivered",
                "DELIVERED", ts(received_at), "{}", "\\N", "t", "parked", "\\N",
            ])
        if status == "delivered" and rng.random() < 0.05:
            yield "clicks", "\t".join([
                str(uuid.UUID(int=(2 << 64) + index)), vendor, message_id, str(index), f"4477{index:08d}",
                "https://x.test/o", ts(first + timedelta(minutes=3)), ts(first + timedelta(minutes=3)), "{}",
            ])
        if rng.random() < 0.002:
            yield "opt_out_history", "\t".join([
                f"4477{index:08d}", "sender", f"4470000000{index % 5}", f"4470000000{index % 5}", "opt_out", "stop",
                "t", vendor, str(uuid.UUID(int=(3 << 64) + index)), ts(first or received_at),
            ])


def load(conninfo: str, rows: int) -> None:
    """COPY the generated rows, table by table buffers flushed in chunks."""
    columns = {"sent": ("sent_messages", SENT_COLUMNS), "receipts": ("receipts", RECEIPT_COLUMNS),
               "clicks": ("clicks", CLICK_COLUMNS), "opt_out_history": ("opt_out_history", OPT_OUT_COLUMNS)}
    buffers: dict[str, list[str]] = {name: [] for name in columns}
    with psycopg.connect(conninfo) as connection:

        def flush(name: str) -> None:
            table, names = columns[name]
            with connection.cursor().copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                copy.write("\n".join(buffers[name]) + "\n")
            buffers[name].clear()

        for name, line in generate(rows):
            buffers[name].append(line)
            if name == "sent" and len(buffers["sent"]) >= CHUNK:
                for pending in columns:  # sent first: receipts and clicks reference it
                    if buffers[pending]:
                        flush(pending)
        for pending in columns:
            if buffers[pending]:
                flush(pending)
        connection.commit()
        connection.execute("ANALYZE")


def timed(function, repeat: int) -> tuple[float, object]:
    """Median wall time of `repeat` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def measure(url: str, rows: int, repeat: int, *, with_groupby: bool) -> tuple[float, float | None]:
    """Load `rows` messages, rebuild their aggregates, time the report (and the bare GROUP BY); seconds each."""
    upgrade(url)
    began = time.perf_counter()
    load(url.replace("postgresql+psycopg://", "postgresql://"), rows)
    print(f"loaded rows={rows} seconds={time.perf_counter() - began:.1f}")
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            counts = {table: connection.scalar(sqlalchemy.text(f"SELECT count(*) FROM {table}"))
                      for table in ("sent_messages", "receipts", "clicks", "opt_out_history")}
        print("tables " + " ".join(f"{table}={count}" for table, count in counts.items()))
        began = time.perf_counter()
        with engine.connect() as connection:  # COPY bypasses the processors: aggregates come from the rebuild
            written = rebuild(connection)
            connection.commit()
        # VACUUM too, not only ANALYZE: otherwise autovacuum visits the freshly loaded 1.2M receipts while the
        # report is timed (one run measured 1M at 1.91x 100k, its GROUP BY 44% slower than the run before)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sqlalchemy.text("VACUUM ANALYZE"))
        print(f"rebuild_seconds={time.perf_counter() - began:.1f} "
              + " ".join(f"{table}={count}" for table, count in written.items()))
        settings = load_settings(environ={}, overrides={"database_url": url, "vendors": {
            "sinch": {"missing_receipt_hours": 24}}})
        request = ReportRequest(START, START + timedelta(days=DAYS), NOW, ("vendor", "day"))
        bare = sqlalchemy.text(
            "SELECT vendor, to_char(timezone('UTC', sent_at), 'YYYY-MM-DD') AS day, count(*) FROM sent_messages "
            "WHERE sent_at >= :start AND sent_at < :end GROUP BY 1, 2"
        )
        groupby_seconds = None
        with engine.connect() as connection:
            if with_groupby:
                groupby_seconds, groups = timed(
                    lambda: connection.execute(bare, {"start": request.start, "end": request.end}).all(), repeat)
                print(f"groupby_seconds={groupby_seconds:.3f} groups={len(groups)}")
            report_seconds, report = timed(lambda: to_json(build_report(connection, settings, request)), repeat)
        print(f"rows={rows} report_seconds={report_seconds:.3f} report_bytes={len(report)}")
        return report_seconds, groupby_seconds
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000, help="the same days with fewer messages")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg-url", default=os.environ.get(
        "SMSHOOKS_TEST_PG_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    figures = {}
    for rows in (args.small_rows, args.rows):
        url = create_database(args.pg_url)
        try:
            figures[rows] = measure(url, rows, args.repeat, with_groupby=rows == args.rows)
        finally:
            drop_database(args.pg_url, url)
    report_large, groupby_large = figures[args.rows]
    report_small, _ = figures[args.small_rows]
    print(f"report_1m_vs_100k={report_large / report_small:.2f}")
    print(f"report_vs_groupby={report_large / groupby_large:.2f}")


if __name__ == "__main__":
    main()

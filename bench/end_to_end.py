"""End to end: from the receiver's 200 for a receipt to its status in PostgreSQL, at a steady callback rate.

Starts a real broker, a fresh PostgreSQL database, the receiver under gunicorn (docker/gunicorn.conf.py) and
`smshooks process all`; registers the sent messages first, then posts one generic receipt per message at a
paced rate. A receipt row commits in the same transaction as its message's status change, so polling the
receipts table by id every 20 ms dates each status (resolution 20 ms). Last two lines:
`end_to_end_p50_ms=<ms>` and `end_to_end_p99_ms=<ms>`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy  # noqa: E402

from bench.databases import create_database, drop_database  # noqa: E402
from processors.db import upgrade  # noqa: E402
from smshooks.broker import LocalBroker, free_port  # noqa: E402
from tests.reliability.load import Load  # noqa: E402

PG_ADMIN_URL = os.environ.get("SMSHOOKS_TEST_PG_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres")
TOKEN = "bench-token"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wait_ready(base: str, timeout: float = 60) -> None:
    """Poll /readyz until the receiver reports Kafka reachable."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("receiver not ready")


def register_sent(base: str, count: int) -> None:
    """POST the sent messages in lists of 200 (a list of 500 is over the 32 KB body limit)."""
    import requests

    for start in range(0, count, 200):
        batch = [{"vendor": "generic", "message_id": f"e2e-{i}", "recipient": f"+4477009{i:05d}"}
                 for i in range(start, min(count, start + 200))]
        response = requests.post(base + "/v1/sent-messages", json=batch, timeout=30,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
        response.raise_for_status()


def wait_rows(engine, table: str, count: int, timeout: float) -> None:
    """Until `table` holds `count` rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(sqlalchemy.text(f"select count(*) from {table}")).scalar() >= count:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{table} did not reach {count} rows")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500, help="receipts per second (default 500)")
    parser.add_argument("--seconds", type=float, default=20, help="duration of the paced load (default 20)")
    args = parser.parse_args()
    count = int(args.rate * args.seconds)
    work = Path(tempfile.mkdtemp(prefix="smshooks-e2e-"))
    database_url = create_database(PG_ADMIN_URL)
    broker = LocalBroker(free_port(), heap="512m", quick_start=False).start(work / "kafka.log")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSHOOKS_", "PROMETHEUS_"))}
    env.update({
        "SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "SMSHOOKS_DATABASE_URL": database_url,
        "SMSHOOKS_API_TOKEN": TOKEN, "SMSHOOKS_LOG_LEVEL": "WARNING", "SMSHOOKS_DATA_DIR": str(work),
        "SMSHOOKS_RATE_LIMIT_PER_VENDOR": "100000/second", "SMSHOOKS_RATE_LIMIT_PER_SOURCE": "100000/second",
        "SMSHOOKS_METRICS_PORT": str(free_port()), "SMSHOOKS_BIND": f"127.0.0.1:{port}",
    })
    children: list[subprocess.Popen] = []
    engine = sqlalchemy.create_engine(database_url)
    try:
        upgrade(database_url)
        bin_dir = Path(sys.executable).parent
        log = open(work / "stack.log", "wb")  # noqa: SIM115 - closed with the children
        children.append(subprocess.Popen(
            [str(bin_dir / "gunicorn"), "--chdir", str(ROOT), "-c", str(ROOT / "docker" / "gunicorn.conf.py"),
             "app:app"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        children.append(subprocess.Popen([str(bin_dir / "smshooks"), "process", "all"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True))
        wait_ready(base)
        print(f"registering {count} sent messages ...", flush=True)
        register_sent(base, count)
        wait_rows(engine, "sent_messages", count, timeout=120)
        print(f"posting {count} receipts at {args.rate:.0f}/s ...", flush=True)

        def receipt(index: int) -> tuple[str, dict]:
            return "/v1/callbacks/generic/delivery-receipts", {
                "json": {"message_id": f"e2e-{index}", "status": "delivered", "vendor_status": "DELIVRD"}}

        seen: dict[str, float] = {}
        last_id = 0
        load = Load(base, receipt, threads=16, limit=count, rate=args.rate).start()
        deadline = time.monotonic() + args.seconds + 60
        with engine.connect() as connection:
            while len(seen) < count and time.monotonic() < deadline:
                rows = connection.execute(sqlalchemy.text(
                    "select id, message_id from receipts where id > :last order by id"), {"last": last_id}).all()
                connection.commit()
                now = time.monotonic()
                for row_id, message_id in rows:
                    seen.setdefault(message_id, now)
                    last_id = max(last_id, row_id)
                time.sleep(0.02)
        answers = load.stop()
    finally:
        for child in children:
            try:
                os.killpg(child.pid, 15)
                child.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        broker.stop()
        engine.dispose()
        drop_database(PG_ADMIN_URL, database_url)
    accepted = [a for a in answers if a.status == 200]
    latencies = [(seen[f"e2e-{a.index}"] - a.ended) * 1000 for a in accepted if f"e2e-{a.index}" in seen]
    span = max(a.ended for a in answers) - min(a.started for a in answers)
    print(f"receipts posted {len(answers)}, accepted {len(accepted)}, in the database {len(latencies)}, "
          f"achieved rate {len(answers) / span:.0f}/s")
    if len(latencies) != len(accepted) or len(accepted) != count:
        print("ERROR: some receipts were not accepted or never reached the database", file=sys.stderr)
        return 1
    print(f"receiver 200 -> status in the database: p50 {percentile(latencies, 0.5):.0f} ms, "
          f"p95 {percentile(latencies, 0.95):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms "
          f"(max {max(latencies):.0f} ms; 20 ms polling)")
    print(f"end_to_end_p50_ms={percentile(latencies, 0.5):.0f}")
    print(f"end_to_end_p99_ms={percentile(latencies, 0.99):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

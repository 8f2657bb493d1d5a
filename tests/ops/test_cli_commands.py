"""The commands a newcomer and an operator run first: config check, db upgrade, and their --help.

Inputs are the repository's own config.example.toml and made-up secrets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver.vendors import callback_vendors
from smshooks.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(monkeypatch):
    """Invoke the CLI with only the given SMSHOOKS_* variables."""

    def invoke(args, **env):
        for name in [n for n in __import__("os").environ if n.startswith("SMSHOOKS_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return CliRunner().invoke(main, args)

    return invoke


def test_config_check_runs_on_the_example_file_and_masks_every_secret(run):
    example = ROOT / "config.example.toml"
    result = run(["config", "check"], SMSHOOKS_CONFIG=str(example),
                 SMSHOOKS_DATABASE_URL="postgresql+psycopg://smshooks:hunter2-db@db:5432/smshooks",
                 SMSHOOKS_RATE_LIMIT_STORAGE_URI="redis://:redis-pass-9@cache:6379/0",
                 SMSHOOKS_API_TOKEN="api-token-value-42")
    assert result.exit_code == 0, result.output
    output = result.stdout
    data = json.loads(output)
    for secret in ("hunter2-db", "redis-pass-9", "api-token-value-42", "change-me", "twilio-auth-token",
                   "signature-secret", "whsec_MfKQ9r8", "eu-secret"):
        assert secret not in result.output, secret
    assert data["api_token"] == "set"
    assert data["database_url"] == "postgresql+psycopg://smshooks:***@db:5432/smshooks"
    assert data["effective_database_url"] == data["database_url"]
    assert data["rate_limit_storage_uri"] == "redis://:***@cache:6379/0"
    assert data["vendors"]["sinch"]["auth"][0]["secret"] == "set"
    assert data["vendors"]["sinch"]["accounts"]["eu"]["auth"][0]["secret"] == "set"
    assert data["vendors"]["jasmin"]["auth"][1]["allow"] == ["192.0.2.10/32"]  # not a secret


def test_config_check_warns_about_every_enabled_vendor_without_authentication(run, tmp_path):
    config = tmp_path / "smshooks.toml"
    config.write_text('[vendors.sinch]\nauth = [{ scheme = "sinch_hmac", secret = "s" }]\n'
                      "[vendors.sinch.accounts.eu]\n"  # no auth of its own: keeps the vendor's
                      "[vendors.sinch.accounts.open]\nauth = []\n"  # checks explicitly off
                      "[vendors.jasmin]\nenabled = false\n")
    result = run(["config", "check"], SMSHOOKS_CONFIG=str(config))
    assert result.exit_code == 0, result.output
    warned = {line.split("'")[1] for line in result.stderr.splitlines() if line.startswith("warning: vendor")}
    # every vendor that calls back, from the registry (a new vendor's module is enough), but the disabled one
    assert warned == callback_vendors() - {"jasmin"}
    assert "vendor 'sinch' account 'open' has no authentication" in result.stderr
    # the warning names what the vendor's software can send, from its module, and where it documents it
    assert "it can use url_token, ip_allow_list: https://docs.jasminsms.com" not in result.stderr  # disabled
    assert "it can use twilio_signature, url_token: https://www.twilio.com/docs/" in result.stderr
    assert "account 'eu'" not in result.stderr
    assert "vendor 'sinch' is enabled" not in result.stderr
    example = run(["config", "check"], SMSHOOKS_CONFIG=str(ROOT / "config.example.toml"))
    assert "warning" not in example.stderr  # every vendor of the example has its auth


def test_db_upgrade_creates_the_sqlite_folder(run, tmp_path):
    data_dir = tmp_path / "fresh" / "data"
    result = run(["db", "upgrade"], SMSHOOKS_DATA_DIR=str(data_dir))
    assert result.exit_code == 0, result.output
    assert (data_dir / "smshooks.db").exists()


def test_db_upgrade_says_in_one_line_what_is_wrong(run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run(["db", "upgrade"], SMSHOOKS_DATABASE_URL=f"sqlite:///{blocker}/x/smshooks.db")
    assert result.exit_code == 1
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    unreachable = run(["db", "upgrade"],
                      SMSHOOKS_DATABASE_URL="postgresql+psycopg://u:pw-secret@127.0.0.1:1/db?connect_timeout=2")
    assert unreachable.exit_code == 1 and "Traceback" not in unreachable.output
    assert "cannot migrate postgresql+psycopg://u:***@127.0.0.1:1/db" in unreachable.output
    assert "pw-secret" not in unreachable.output


def leaf_commands(group=main, prefix=()):
    """Every runnable command path of the CLI, subcommands of groups included."""
    import click

    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*prefix, name))
        else:
            yield [*prefix, name]


@pytest.mark.parametrize("command", list(leaf_commands()), ids=" ".join)
def test_every_command_help_has_examples(command):
    """README promises it: every command's --help carries examples."""
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, command

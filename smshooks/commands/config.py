"""`smshooks config check`: validate settings and print them with secrets masked."""

from __future__ import annotations

import dataclasses
import json

import click

from smshooks.cli import settings_from


@click.group("config")
def COMMAND() -> None:  # noqa: N802 - the registry looks for this name
    """Inspect configuration."""


@COMMAND.command("check")
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate SMSHOOKS_* variables and the TOML file; print the effective settings, secrets masked."""
    settings = settings_from(ctx)
    data = dataclasses.asdict(settings)
    for vendor in data["vendors"].values():
        for scheme in vendor["auth"] + [s for a in vendor["accounts"].values() for s in a["auth"]]:
            for secret in ("secret", "password", "token", "secrets", "tokens", "account_secrets"):
                if scheme.get(secret):
                    scheme[secret] = "***"  # the rotation lists and per-account tokens hold secrets too
    if data.get("api_token"):
        data["api_token"] = "***"
    data["effective_database_url"] = settings.effective_database_url
    click.echo(json.dumps(data, indent=2, default=str))

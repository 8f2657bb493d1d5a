"""`smshooks config check`: validate settings and print them with every secret masked."""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from smshooks.cli import settings_from

# keys whose values are secrets wherever they appear (top level or in an auth scheme): shown as set / not set
SECRET_KEYS = {"api_token", "metrics_token", "secret", "password", "token", "secrets", "tokens", "account_secrets"}


@click.group("config")
def COMMAND() -> None:  # noqa: N802 - the registry looks for this name
    """Inspect configuration."""


@COMMAND.command("check")
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate SMSHOOKS_* variables and the TOML file; print the effective settings, secrets masked.

    Secrets (tokens, passwords, signing secrets) print as "set" or "not set"; passwords inside URLs
    (database, rate-limit storage) as "***". Warnings go to standard error: an enabled vendor (or
    account) without authentication accepts callbacks from anyone. A bad setting exits 2, naming it.

    \b
    Examples:
      SMSHOOKS_CONFIG=config.example.toml smshooks config check
      SMSHOOKS_DATABASE_URL=postgresql+psycopg://u:p@db/smshooks smshooks config check
    """
    from receiver.vendors import load_adapters

    settings = settings_from(ctx)
    data = masked(dataclasses.asdict(settings))
    data["effective_database_url"] = masked_url(settings.effective_database_url)
    click.echo(json.dumps(data, indent=2, default=str))
    for warning in open_vendors(settings, load_adapters()):
        click.echo(f"warning: {warning}", err=True)


def masked(value: Any, key: str = "") -> Any:
    """`value` with secrets replaced by set / not set and URL passwords by ***, recursively."""
    if key in SECRET_KEYS:
        if isinstance(value, list | tuple | dict):
            return f"{len(value)} set"  # rotation lists: how many, never which
        return "set" if value else "not set"
    if isinstance(value, dict):
        return {name: masked(item, name) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    if isinstance(value, str):
        return masked_url(value)
    return value


def masked_url(text: str) -> str:
    """A URL with its password (if any) replaced by ***; any other text unchanged."""
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if not password:
        return text
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def open_vendors(settings, adapters: dict) -> list[str]:
    """Every enabled vendor and account whose callbacks need no authentication, with the schemes it can use."""
    warnings = []
    for name, adapter in sorted(adapters.items()):
        vendor = settings.vendor(name)
        if not vendor.enabled or not adapter.kinds:
            continue  # disabled, or a send-only vendor (FullSMS) that calls nothing back
        if not vendor.auth:
            warnings.append(f"vendor {name!r} is enabled with no authentication: anyone can post its callbacks "
                            f"(set [vendors.{name}] auth, or enabled = false; it can use "
                            f"{', '.join(adapter.auth_schemes)}: {adapter.docs})")
        warnings += [f"vendor {name!r} account {account!r} has no authentication"
                     for account, settings_ in sorted(vendor.accounts.items()) if not settings_.auth]
    return warnings

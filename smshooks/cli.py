"""`smshooks` command line: one click group; each command lives in smshooks/commands/<name>.py."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from core.settings import ConfigError, load_settings
from receiver.vendors import auth_catalog


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.pass_context
def main(ctx: click.Context) -> None:
    """smshooks: SMS vendor callbacks to Kafka, reconciled into a database and reported on.

    Settings come from SMSHOOKS_* environment variables and the TOML file named by SMSHOOKS_CONFIG
    (see config.example.toml).
    """
    ctx.ensure_object(dict)


def settings_from(ctx: click.Context):
    """Load settings once per invocation; a bad setting exits 2 with the key named."""
    root = ctx.find_root()
    root.ensure_object(dict)
    if "settings" not in root.obj:
        try:
            root.obj["settings"] = load_settings(vendors=auth_catalog())
        except ConfigError as exc:
            click.echo(f"configuration error: {exc}", err=True)
            sys.exit(2)
    return root.obj["settings"]


def _register_commands() -> None:
    """Add every `COMMAND` found in smshooks.commands.* to the group."""
    import smshooks.commands as package

    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"smshooks.commands.{module_info.name}")
        command = getattr(module, "COMMAND", None)
        if command is not None:
            main.add_command(command)


_register_commands()

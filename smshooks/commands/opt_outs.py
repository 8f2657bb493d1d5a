"""`smshooks opt-outs export`: the suppression list (everyone currently opted out) as CSV or JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from smshooks.cli import settings_from


@click.group("opt-outs")
def COMMAND() -> None:  # noqa: N802 - the registry looks for this name
    """Opt-out (suppression) list."""


@COMMAND.command("export")
@click.option("--since", metavar="WHEN", help="Only subscribers who opted out at or after WHEN (date or ISO 8601).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="File to write (default: standard output).")
@click.pass_context
def export(ctx, since, fmt, output) -> None:
    """Write the suppression list: msisdn, scope, sender, opted_out_at, keyword, source_event_id.

    \b
    Examples:
      smshooks opt-outs export --output suppression.csv
      smshooks opt-outs export --since 2026-03-01 --format json
    """
    from processors.reports import params
    from processors.reports.opt_outs import suppression_csv, suppression_json, suppression_rows
    from smshooks.commands.report import connect

    settings = settings_from(ctx)
    try:
        since_at = params.parse_time("since", since) if since else None
    except params.ParameterError as exc:
        raise click.BadParameter(exc.message, param_hint="--since") from None
    render = suppression_csv if fmt == "csv" else suppression_json
    stream = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        with connect(settings) as connection:
            for chunk in render(suppression_rows(connection, settings.opt_out_scope, since_at)):
                stream.write(chunk)
    finally:
        if output:
            stream.close()
    if output:
        click.echo(f"wrote {output}", err=True)

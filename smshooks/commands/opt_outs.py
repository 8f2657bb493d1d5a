"""`smshooks opt-outs export|show`: the suppression list as CSV or JSON, or one number's opt-out state."""

from __future__ import annotations

import json
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


@COMMAND.command("show")
@click.argument("msisdn")
@click.option("--sender", help="Our number the subscriber wrote to (required when opt_out_scope is sender).")
@click.pass_context
def show(ctx, msisdn: str, sender: str | None) -> None:
    """Is MSISDN opted out (for --sender)? Since when, by which keyword, and recent history, as JSON.

    The same answer as GET /v1/opt-outs/<msisdn>?sender=...

    \b
    Examples:
      smshooks opt-outs show +447700900123 --sender 60777
      SMSHOOKS_OPT_OUT_SCOPE=account smshooks opt-outs show 447700900123
    """
    from core.events import digits_msisdn
    from processors.reports.opt_outs import opt_out_status
    from smshooks.commands.report import connect

    settings = settings_from(ctx)
    number = digits_msisdn(msisdn)
    if not number or not number.isdigit() or not 6 <= len(number) <= 15:
        raise click.BadParameter(f"{msisdn[:40]!r} is not a phone number (E.164, 6-15 digits)", param_hint="MSISDN")
    if settings.opt_out_scope == "sender" and not (sender or "").strip():
        raise click.UsageError("--sender is required: opt-outs are kept per sender (our number)")
    with connect(settings) as connection:
        found = opt_out_status(connection, number, sender, settings.opt_out_scope)
    click.echo(json.dumps(found, indent=2, default=str))


@COMMAND.command("history")
@click.argument("msisdn")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="File to write (default: standard output).")
@click.pass_context
def history(ctx, msisdn: str, fmt: str, output: Path | None) -> None:
    """The consent history of MSISDN for every sender: each STOP, START, HELP and vendor refusal, with its evidence.

    The same answer as GET /v1/opt-outs/<msisdn>/history.

    \b
    Examples:
      smshooks opt-outs history +447700900123
      smshooks opt-outs history 447700900123 --format csv -o consent-447700900123.csv
    """
    from core.events import digits_msisdn
    from processors.reports.opt_outs import consent_history, consent_history_csv
    from smshooks.commands.report import connect, write

    settings = settings_from(ctx)
    number = digits_msisdn(msisdn)
    if not number or not number.isdigit() or not 6 <= len(number) <= 15:
        raise click.BadParameter(f"{msisdn[:40]!r} is not a phone number (E.164, 6-15 digits)", param_hint="MSISDN")
    with connect(settings) as connection:
        rows = consent_history(connection, number)
    if fmt == "csv":
        write(consent_history_csv(rows), output)
    else:
        write(json.dumps({"msisdn": number, "history": rows}, indent=2) + "\n", output)

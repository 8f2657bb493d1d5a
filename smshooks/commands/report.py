"""`smshooks report reconciliation`: the reconciliation report as JSON, CSV or HTML, to a file or stdout."""

from __future__ import annotations

from pathlib import Path

import click

from smshooks.cli import settings_from


def sent_time_range(command):
    """--from and --to: the sent-time range every report covers."""
    command = click.option("--to", "end", metavar="WHEN",
                           help="End of the sent-time range, exclusive (default: now).")(command)
    return click.option("--from", "start", metavar="WHEN",
                        help="Start of the sent-time range, inclusive (default: --to - 7 days).")(command)


def rendered_output(command):
    """--format and --output: JSON, CSV or HTML, to a file or standard output."""
    command = click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path),
                           help="File to write (default: standard output).")(command)
    return click.option("--format", "fmt", type=click.Choice(["json", "csv", "html"]), default="json",
                        show_default=True)(command)


def parsed_range(start: str | None, end: str | None, now: str | None = None, group_by: str | None = None):
    """(now, start, end, dimensions) from the shared report options; a bad value is click's usage error naming it."""
    from core.events import utc_now
    from processors.reports import params

    try:
        measured_at = params.parse_time("now", now) if now else utc_now()
        start_at, end_at = params.parse_range(start, end, measured_at)
        dimensions = params.parse_group_by(group_by) if group_by is not None else None
    except params.ParameterError as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.name.replace('_', '-')}") from None
    return measured_at, start_at, end_at, dimensions


@click.group("report")
def COMMAND() -> None:  # noqa: N802 - the registry looks for this name
    """Reports over the processors' database."""


@COMMAND.command("reconciliation")
@sent_time_range
@click.option("--group-by", default="", metavar="DIMS",
              help="Comma-separated subset of vendor, day, sender, campaign, country (default: totals only).")
@rendered_output
@click.option("--now", metavar="WHEN", help="Instant ages are measured from, for reproducible reports (default: now).")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(0, 100_000),
              help="How many missing and unmatched receipts to list; totals are always complete.")
@click.pass_context
def reconciliation(ctx, start, end, group_by, fmt, output, now, limit) -> None:
    """Reconcile sent messages with their receipts over [--from, --to) of sent time.

    WHEN is a date (YYYY-MM-DD, midnight UTC) or an ISO 8601 time (UTC when no offset is given).

    \b
    Examples:
      smshooks report reconciliation --from 2026-03-01 --to 2026-03-08 --group-by vendor,day
      smshooks report reconciliation --from 2026-03-01 --to 2026-04-01 \\
          --group-by campaign,country --format csv --output march.csv
      smshooks report reconciliation --group-by vendor,day --format html --output report.html
    """
    from processors.reports.formats import to_csv, to_json
    from processors.reports.html import to_html
    from processors.reports.reconciliation import ReportRequest, build_report

    settings = settings_from(ctx)
    measured_at, start_at, end_at, dimensions = parsed_range(start, end, now, group_by)
    request = ReportRequest(start=start_at, end=end_at, now=measured_at, group_by=dimensions, list_limit=limit)
    with connect(settings) as connection:
        report = build_report(connection, settings, request)
        if fmt == "html":  # the page shows the same range one period earlier beside each headline figure
            previous = build_report(connection, settings, request.earlier())
    if fmt == "html":
        write(to_html(report, previous, base_url=settings.public_base_url), output)
    else:
        write({"json": to_json, "csv": to_csv}[fmt](report), output)



@COMMAND.command("opt-outs")
@click.option("--from", "start", metavar="WHEN", help="Start of the range, inclusive (default: --to - 7 days).")
@click.option("--to", "end", metavar="WHEN", help="End of the range, exclusive (default: now).")
@click.option("--grace-days", type=click.IntRange(0, 365), metavar="N",
              help="Business days allowed to honour an opt-out (default: opt_out_grace_business_days, 10; 0 = none).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "html"]), default="json", show_default=True,
              help="csv is the sent-after-opt-out list (one line per message).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="File to write (default: standard output).")
@click.option("--now", metavar="WHEN", help="Messages after an opt-out are followed up to WHEN (default: now).")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(0, 100_000),
              help="How many messages and opt-outs to list in JSON and HTML; totals and CSV are always complete.")
@click.pass_context
def opt_outs(ctx, start, end, grace_days, fmt, output, now, limit) -> None:
    """Opt-out compliance over [--from, --to): messages sent after an opt-out, and the time to honour each opt-out.

    \b
    Examples:
      smshooks report opt-outs --from 2026-04-01 --to 2026-05-01
      smshooks report opt-outs --from 2026-04-01 --to 2026-05-01 --format csv -o sent-after-opt-out.csv
      smshooks report opt-outs --grace-days 0 --format html -o compliance.html
    """
    from processors.reports import compliance

    settings = settings_from(ctx)
    measured_at, start_at, end_at, _ = parsed_range(start, end, now)
    grace = settings.opt_out_grace_business_days if grace_days is None else grace_days
    request = compliance.ComplianceRequest(start=start_at, end=end_at, now=measured_at, grace_business_days=grace,
                                           list_limit=100_000 if fmt == "csv" else limit)
    with connect(settings) as connection:
        report = compliance.build_compliance_report(connection, settings, request)
    if fmt == "json":
        import json

        text = json.dumps(report, indent=2) + "\n"
    elif fmt == "csv":
        text = compliance.to_csv(report)
    else:
        text = compliance.to_html(report, base_url=settings.public_base_url)
    write(text, output)


@COMMAND.command("failures")
@sent_time_range
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 1000), help="Reasons listed per vendor.")
@rendered_output
@click.pass_context
def failures(ctx, start, end, top, fmt, output) -> None:
    """Why messages failed: per vendor, the top failure reasons by count, with the vendor's code and its meaning.

    \b
    Examples:
      smshooks report failures --from 2026-03-01 --to 2026-04-01
      smshooks report failures --from 2026-03-01 --to 2026-04-01 --top 5 --format csv -o failures.csv
    """
    import json

    from processors.reports import failures as report_module

    settings = settings_from(ctx)
    _, start_at, end_at, _ = parsed_range(start, end)
    with connect(settings) as connection:
        report = report_module.build_failure_report(connection, report_module.FailureRequest(start_at, end_at, top))
    render = {"json": lambda r: json.dumps(r, indent=2) + "\n", "csv": report_module.to_csv,
              "html": report_module.to_html}[fmt]
    write(render(report), output)


@COMMAND.command("costs")
@sent_time_range
@click.option("--group-by", default="", metavar="DIMS",
              help="Comma-separated subset of vendor, day, sender, campaign, country; each row is also per currency.")
@rendered_output
@click.option("--now", metavar="WHEN", help="Instant 'missing' is measured from (default: now).")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(0, 100_000),
              help="How many messages whose price differs to list.")
@click.pass_context
def costs(ctx, start, end, group_by, fmt, output, now, limit) -> None:
    """What was paid for: billed messages and segments, reported cost per currency, cost per delivered message,
    cost of messages not delivered, and reported against expected prices.

    \b
    Examples:
      smshooks report costs --from 2026-06-01 --to 2026-07-01 --group-by vendor
      smshooks report costs --from 2026-06-01 --to 2026-07-01 --group-by vendor,country --format csv -o costs.csv
    """
    import json

    from processors.reports import costs as report_module

    settings = settings_from(ctx)
    measured_at, start_at, end_at, dimensions = parsed_range(start, end, now, group_by)
    request = report_module.CostRequest(start_at, end_at, measured_at, dimensions, limit)
    with connect(settings) as connection:
        report = report_module.build_cost_report(connection, settings, request)
    if fmt == "html":
        text = report_module.to_html(report, base_url=settings.public_base_url)
    else:
        text = json.dumps(report, indent=2) + "\n" if fmt == "json" else report_module.to_csv(report)
    write(text, output)


@COMMAND.command("rebuild-aggregates")
@click.pass_context
def rebuild_aggregates(ctx) -> None:
    """Recompute the report aggregates from the rows (after migration 0008, or a bug that made them disagree).

    The processors keep the aggregates in the same transaction as the rows; this replaces them all in one
    transaction. Stop the processors first: a change they commit during the rebuild could be counted twice or
    not at all.

    \b
    Example:
      smshooks report rebuild-aggregates
    """
    import time

    from processors.reports.aggregates import rebuild

    began = time.monotonic()

    def progress(what: str, count: int) -> None:
        click.echo(f"{time.monotonic() - began:7.1f} s  {what}: {count}", err=True)

    with connect(settings_from(ctx)) as connection:
        written = rebuild(connection, progress)
        connection.commit()
    click.echo("rebuilt " + ", ".join(f"{table}={rows}" for table, rows in written.items()) + " rows")


def connect(settings):
    """A read connection to the processors' database, or a clear error when it is missing or unmigrated."""
    from contextlib import contextmanager

    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    url = settings.effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise click.ClickException(f"no database at {url}: run the processors (or `smshooks db upgrade`) first")

    @contextmanager
    def _connection():
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise click.ClickException(f"database error ({_masked(url)}): {str(exc).splitlines()[0]}") from None
        finally:
            engine.dispose()

    return _connection()


def _masked(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def write(text: str, output: Path | None) -> None:
    """Write to the file, or to standard output."""
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output} ({len(text.encode())} bytes)", err=True)

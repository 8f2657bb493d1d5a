"""`smshooks import-sent FILE`: load sent messages from CSV or JSON Lines onto sms.sent-messages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from smshooks.cli import settings_from


@click.command("import-sent")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on standard error.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--rejects", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Where refused rows go, as JSON Lines {line, reason, row} (default: PATH.rejects.jsonl).")
@click.pass_context
def COMMAND(ctx: click.Context, path: Path, progress: bool, as_json: bool, rejects: Path | None) -> None:  # noqa: N802
    """Publish sent messages from a CSV (header row) or JSON Lines (.jsonl/.ndjson) file.

    Each row is checked by the schema of POST /v1/sent-messages: vendor (one we serve), message_id,
    recipient (a phone number) and sent_at (ISO 8601) are required; sender, batch_id, campaign_id,
    client_ref, parts, account are optional; other columns are ignored, as over HTTP. Each valid row
    becomes one event, so the sent-messages processor stores it and re-matches receipts that arrived
    first. Refused rows are listed with their line numbers and written to the rejects file; the exit
    status is 1 when any row was refused.

    \b
    Examples:
      smshooks import-sent march-sends.csv
      smshooks import-sent sends.jsonl --rejects bad-rows.jsonl --json
    """
    from kafka.errors import KafkaError

    from smshooks.importer import import_sent

    settings = settings_from(ctx)
    try:
        summary = import_sent(path, settings, progress=progress, rejects=rejects)
    except KafkaError as exc:
        raise click.ClickException(
            f"Kafka at {settings.kafka_bootstrap_servers} is unavailable ({exc}); run it again: "
            "rows already published get the same event ids and are deduplicated"
        ) from None
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        click.echo(f"{path}: {summary.rows} rows, {summary.published} published, {len(summary.rejected)} rejected")
        for line, reason in summary.rejected[:50]:
            click.echo(f"  line {line}: {reason}")
        if len(summary.rejected) > 50:
            click.echo(f"  ... and {len(summary.rejected) - 50} more")
        if summary.rejects_path:
            click.echo(f"refused rows written to {summary.rejects_path}")
    if summary.rejected:
        sys.exit(1)

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
@click.pass_context
def COMMAND(ctx: click.Context, path: Path, progress: bool, as_json: bool) -> None:  # noqa: N802
    """Publish sent messages from a CSV (header row) or JSON Lines (.jsonl/.ndjson) file.

    Columns are the fields of sms.sent_message.v1: vendor, message_id, recipient (required), sent_at,
    sender, batch_id, campaign_id, client_ref, parts, account. Each valid row becomes one event, so the
    sent-messages processor stores it and re-matches receipts that arrived first. Rejected rows are listed
    with their line numbers; the exit status is 1 when any row was rejected.

    \b
    Example:
      smshooks import-sent march-sends.csv
    """
    from kafka.errors import KafkaError

    from processors.importer import import_sent

    settings = settings_from(ctx)
    try:
        summary = import_sent(path, settings, progress=progress)
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
            click.echo(f"  ... and {len(summary.rejected) - 50} more (use --json for all)")
    if summary.rejected:
        sys.exit(1)

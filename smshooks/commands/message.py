"""`smshooks message <vendor> <id>`: one sent message's status, receipts, conflicts and clicks, like the read API."""

from __future__ import annotations

import json

import click

from receiver.vendors import canonical_message_id, load_adapters
from smshooks.cli import settings_from


@click.command("message")
@click.argument("vendor", type=click.Choice(sorted(load_adapters())))
@click.argument("message_id")
@click.pass_context
def COMMAND(ctx: click.Context, vendor: str, message_id: str) -> None:  # noqa: N802 - the registry looks for this
    """Print one message as JSON, as GET /v1/messages/<vendor>/<message_id> answers it; exit 1 if unknown.

    \b
    Examples:
      smshooks message twilio SM0123456789abcdef0123456789abcdef
      smshooks message sinch 01HZX7Y5ZQ3M2:447700900123
    """
    from processors.reports.messages import message_status
    from smshooks.commands.report import connect

    settings = settings_from(ctx)
    with connect(settings) as connection:
        found = message_status(connection, vendor, canonical_message_id(vendor, message_id))
    if found is None:
        raise click.ClickException(f"no sent message or receipt for {vendor} message {message_id[:60]!r}")
    click.echo(json.dumps(found, indent=2, default=str))

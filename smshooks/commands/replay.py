"""`smshooks replay rejected|dlq`: bring back what was refused or dead-lettered, after the cause is fixed."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from smshooks.cli import settings_from


def _time(value: str | None) -> datetime | None:
    """An ISO 8601 date or time option; a date or a time without zone is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        example = "2026-11-29 or 2026-11-29T10:00Z"
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time ({example})") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


WINDOW_OPTIONS = [
    click.option("--since", help="Only records received at or after this ISO 8601 date or time (UTC if no zone)."),
    click.option("--until", help="Only records received before this ISO 8601 date or time."),
    click.option("--dry-run", is_flag=True, help="Read and count only: publish nothing."),
    click.option("--progress/--no-progress", default=True, help="Show a progress bar on standard error."),
    click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
]


def window_options(function):
    for option in reversed(WINDOW_OPTIONS):
        function = option(function)
    return function


@click.group("replay")
def COMMAND() -> None:  # noqa: N802 - the name the CLI registry looks for
    """Replay rejected callbacks or dead-lettered records after a fix."""


@COMMAND.command("rejected")
@window_options
@click.option("--vendor", help="Only this vendor's callbacks.")
@click.option("--kind", type=click.Choice(["delivery-receipts", "inbound-messages", "link-clicks"]),
              help="Only this kind.")
@click.option("--code", help="Only callbacks refused with this code (e.g. unknown_account).")
@click.pass_context
def rejected(ctx: click.Context, since, until, dry_run, progress, as_json, vendor, kind, code) -> None:
    """Run each callback kept on sms.callbacks.rejected through today's adapters and settings.

    What passes now is published with the event ids it would have had (ids come from the vendor's
    fields), so the processors apply it once; a second replay publishes the same ids, which they
    skip. What still fails is counted by today's reason. Authentication is not repeated: only
    callbacks whose credentials passed were ever recorded.

    \b
    Examples:
      smshooks replay rejected --dry-run
      smshooks replay rejected --vendor twilio --code unknown_account --since 2026-11-28
      smshooks replay rejected --kind delivery-receipts --json
    """
    from smshooks.replay import Window, replay_rejected

    settings = settings_from(ctx)
    window = Window(_time(since), _time(until), vendor, kind, code)
    summary = _run(settings, dry_run, progress, "sms.callbacks.rejected",
                   lambda consumer, producer, tick: replay_rejected(settings, consumer, producer, window, tick))
    _report(summary, dry_run, as_json, "events")


@COMMAND.command("dlq")
@click.option("--topic", required=True,
              help="The original topic, e.g. sms.delivery-receipts (its DLQ is <prefix><topic>.dlq).")
@window_options
@click.pass_context
def dlq(ctx: click.Context, topic, since, until, dry_run, progress, as_json) -> None:
    """Put records a processor dead-lettered back on their original topic, headers as they were.

    Run it after the cause is fixed (a decoder or handler bug, a migration). The dlq_* headers are
    dropped; key, value and every other header are kept, so event ids are unchanged and the
    processors' dedupe makes a second run harmless.

    \b
    Examples:
      smshooks replay dlq --topic sms.delivery-receipts --dry-run
      smshooks replay dlq --topic sms.sent-messages --since 2026-11-28T09:00Z
    """
    from core.events import topic_name
    from smshooks.replay import Window, replay_dlq

    settings = settings_from(ctx)
    dlq_topic = topic_name(settings.topic_prefix, topic.removesuffix(".dlq")) + ".dlq"
    window = Window(_time(since), _time(until))
    summary = _run(settings, dry_run, progress, dlq_topic,
                   lambda consumer, producer, tick: replay_dlq(consumer, producer, dlq_topic, window, tick))
    _report(summary, dry_run, as_json, "records")


def _run(settings, dry_run: bool, progress: bool, topic: str, replay):
    """Build the Kafka clients, run the replay with a progress bar, close the clients."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError
    from tqdm import tqdm

    from core.events import topic_name
    from smshooks.replay import total

    servers = settings.kafka_bootstrap_servers.split(",")
    try:
        consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, group_id=None,
                                 client_id="smshooks-replay")
        producer = None if dry_run else KafkaProducer(bootstrap_servers=servers, acks="all",
                                                      enable_idempotence=True, client_id="smshooks-replay")
    except KafkaError as exc:
        raise click.ClickException(f"Kafka at {settings.kafka_bootstrap_servers} is unavailable: {exc}") from None
    full = topic if topic.endswith(".dlq") else topic_name(settings.topic_prefix, topic)
    try:
        with tqdm(total=total(consumer, full), desc=f"replay {full}", unit=" records", disable=not progress,
                  file=sys.stderr) as bar:
            return replay(consumer, producer, lambda: bar.update())
    except KafkaError as exc:
        raise click.ClickException(f"Kafka failed during the replay ({exc}); run it again: what was already "
                                   "published keeps its ids and is deduplicated") from None
    finally:
        consumer.close()
        if producer is not None:
            producer.close(timeout=10)


def _report(summary, dry_run: bool, as_json: bool, what: str) -> None:
    """The summary, as text or JSON."""
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **summary.as_dict()}, indent=2))
        return
    verb = "would publish" if dry_run else "published"
    click.echo(f"read {summary.read}: {verb} {summary.published} {what}, {summary.filtered} outside the filters, "
               f"{summary.duplicates} already published in this run, {sum(summary.still_rejected.values())} "
               "still rejected")
    for topic, count in sorted(summary.by_topic.items()):
        click.echo(f"  {topic}: {count}")
    for code, count in summary.still_rejected.most_common():
        click.echo(f"  still rejected, {code}: {count}")

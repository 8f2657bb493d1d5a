"""`smshooks process <name>|all`: run processors until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import sys
import threading

import click

from smshooks.cli import settings_from

NAMES = ("sent-messages", "reconciliation", "opt-outs", "clicks")


def _instances(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, int]:
    """`NAME=N` pairs as {name: N}; a usage error names a bad one."""
    found = {}
    for value in values:
        name, _, count = value.partition("=")
        if name not in NAMES or not count.isdigit() or not 1 <= int(count) <= 64:
            raise click.BadParameter(f"{value!r}: expected NAME=N with NAME one of {', '.join(NAMES)} and N 1-64")
        found[name] = int(count)
    return found


@click.command("process")
@click.argument("names", nargs=-1, required=True, type=click.Choice([*NAMES, "all"]))
@click.option("--upgrade/--no-upgrade", default=False, help="Apply database migrations before starting.")
@click.option("--threads", is_flag=True,
              help="Run several processors as threads of this one process instead of one child process each.")
@click.option("--instances", "instances", multiple=True, callback=_instances, metavar="NAME=N",
              help="Run N child processes of a processor (members of its group, sharing its partitions); "
                   "repeatable.")
@click.pass_context
def COMMAND(ctx: click.Context, names: tuple[str, ...], upgrade: bool, threads: bool,  # noqa: N802
            instances: dict[str, int]) -> None:
    """Run processors: one name per process in production (scale up to the partition count), or `all`.

    Several names (or `all`) start one child process per processor, so they use every core; this process
    serves their metrics and passes SIGTERM on. `--threads` runs them in this process instead (one core).
    `--instances` starts more children of a processor: draining a backlog, sent-messages does the most work
    per event (it applies the receipts parked before their sends).

    \b
    Examples:
      smshooks process all                  # every processor, one child process each, for local use
      smshooks process all --threads        # every processor in this one process
      smshooks process all --instances sent-messages=2   # two members of the sent-messages group
      smshooks process reconciliation       # one processor; start more copies to scale out
    """
    from processors.clients import KafkaClients
    from processors.db import upgrade as upgrade_database
    from processors.registry import run_processors
    from processors.runtime import install_signal_handlers
    from receiver.vendors import canonical_message_id

    selected = list(NAMES) if "all" in names else list(dict.fromkeys(names))
    unknown = sorted(set(instances) - set(selected))
    if unknown:
        raise click.UsageError(f"--instances names {', '.join(unknown)}, which this command does not run")
    children = [name for name in selected for _ in range(instances.get(name, 1))]
    if threads and len(children) > len(selected):
        raise click.UsageError("--instances runs child processes; it cannot be combined with --threads")
    settings = settings_from(ctx)
    from processors.observability import configure_logging

    configure_logging(settings.log_level)
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    if upgrade:
        upgrade_database(settings.effective_database_url)
    stop_flag = threading.Event()
    install_signal_handlers(stop_flag)
    from smshooks.supervisor import supervise, tie_to_supervisor

    if len(children) > 1 and not threads:
        sys.exit(supervise(children, settings, stop_flag))
    tie_to_supervisor()
    try:
        run_processors(selected, settings, stop_flag, clients=KafkaClients(settings),
                       canonical_id=canonical_message_id)
    except Exception as exc:  # noqa: BLE001 - report and exit non-zero, the supervisor restarts us
        click.echo(f"processor stopped with an error: {exc}", err=True)
        sys.exit(1)

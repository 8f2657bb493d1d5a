"""Sent messages stored per second on PostgreSQL with the batch prefetch (one locked IN query per vendor and 500
ids) against the per-event locked lookup it replaced, alternating in rounds on one database.

Usage: .venv/bin/python bench/sent_prefetch.py [--rounds N] [--batch N] [--pg URL]
Last line: prefetch_vs_per_event=<rate with the prefetch / rate without>.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

# This folder holds a file named like the `processors` package: keep it off the path (see processors.py).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.databases import create_database, drop_database  # noqa: E402
from core.events import Envelope, SentMessage  # noqa: E402
from core.settings import load_settings  # noqa: E402
from processors.clients import KafkaClients  # noqa: E402
from processors.db import upgrade  # noqa: E402
from processors.db.engine import make_engine, make_session_factory  # noqa: E402
from processors.registry import PROCESSORS  # noqa: E402
from processors.runtime import ProcessorLoop  # noqa: E402
from receiver.vendors import canonical_message_id  # noqa: E402


def batch_of_sends(start: int, size: int) -> list[tuple[object, Envelope]]:
    """`size` new sent messages as (record, envelope) pairs, the shape the loop hands to `_apply`."""
    batch, now = [], datetime.now(UTC)
    for n in range(start, start + size):
        payload = SentMessage(vendor="sinch", message_id=f"bench{n:09d}", recipient=f"44770{n:08d}",
                              sent_at=now, received_at=now)
        batch.append((SimpleNamespace(topic="bench", partition=0, offset=n, headers=[]), Envelope.wrap(payload)))
    return batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    url = create_database(args.pg)
    try:
        upgrade(url)
        engine = make_engine(url)
        settings = load_settings(environ={}, overrides={"database_url": url})
        sent_messages = PROCESSORS["sent-messages"]
        contenders = {"prefetch": sent_messages, "per_event": dataclasses.replace(sent_messages, prefetch=None)}
        loops = {name: ProcessorLoop(processor, settings, threading.Event(), make_session_factory(engine),
                                     clients=KafkaClients(settings), canonical_id=canonical_message_id)
                 for name, processor in contenders.items()}
        seconds: dict[str, list[float]] = {name: [] for name in contenders}
        offset = 0
        for round_number in range(args.rounds):
            order = list(contenders) if round_number % 2 == 0 else list(reversed(contenders))
            for name in order:  # alternate who goes first, so drift hits both
                batch = batch_of_sends(offset, args.batch)
                offset += args.batch
                started = time.perf_counter()
                loops[name]._apply(batch)
                seconds[name].append(time.perf_counter() - started)
            print(f"round {round_number + 1}/{args.rounds}: " + ", ".join(
                f"{name} {args.batch / seconds[name][-1]:.0f} sends/s" for name in contenders), flush=True)
        engine.dispose()
    finally:
        drop_database(args.pg, url)
    trimmed = {name: sorted(values)[1:-1] or values for name, values in seconds.items()}  # best and worst dropped
    rates = {name: args.batch * len(values) / sum(values) for name, values in trimmed.items()}
    for name, rate in rates.items():
        print(f"{name:9} {rate:7.0f} sends/s (new sends, batches of {args.batch})")
    print(f"prefetch_vs_per_event={rates['prefetch'] / rates['per_event']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

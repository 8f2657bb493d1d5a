"""The spool's cost on the normal path: callbacks per second through the receiver with the spool on (Kafka up, so it
is never written: one stat per request) against the same receiver with it off, alternating in rounds, in process,
against one real Apache Kafka.

Usage: .venv/bin/python bench/spool.py [--rounds N] [--requests N]
Last line: spool_vs_plain=<median of the per-round rate ratios, spool on / spool off>.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# This folder holds a file named like the `processors` package: keep it off the path (see processors.py).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from receiver import create_app  # noqa: E402
from smshooks.broker import LocalBroker, free_port  # noqa: E402

PATH = "/v1/callbacks/generic/delivery-receipts"


def rate(client, count: int, offset: int) -> float:
    """Callbacks answered 200 per second, one after another (each waits for its Kafka ack)."""
    started = time.perf_counter()
    for n in range(offset, offset + count):
        response = client.post(PATH, json={"message_id": f"bench-{n}", "status": "delivered"})
        assert response.status_code == 200, response.get_data(as_text=True)
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=1500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="smshooks-bench-spool-"))
    broker = LocalBroker(free_port(), heap="512m", quick_start=False).start(work / "kafka.log")
    try:
        common = {"kafka_bootstrap_servers": broker.bootstrap_servers, "topic_prefix": "bench.",
                  "rate_limit_per_source": "1000000/second", "rate_limit_per_vendor": "1000000/second"}
        clients = {
            "spool": create_app({**common, "spool_enabled": True, "spool_path": str(work / "spool.sqlite3")}),
            "plain": create_app({**common, "spool_enabled": False}),
        }
        clients = {name: app.test_client() for name, app in clients.items()}
        for client in clients.values():
            rate(client, 200, 0)  # producers, topics and JIT warm
        ratios, offset = [], 1000
        for round_number in range(args.rounds):
            order = list(clients) if round_number % 2 == 0 else list(reversed(clients))
            rates = {}
            for name in order:
                rates[name] = rate(clients[name], args.requests, offset)
                offset += args.requests
            ratios.append(rates["spool"] / rates["plain"])
            print(f"round {round_number + 1}: spool {rates['spool']:.0f}/s, plain {rates['plain']:.0f}/s, "
                  f"ratio {ratios[-1]:.3f}", flush=True)
        print(f"spool_vs_plain={statistics.median(ratios):.3f}")
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

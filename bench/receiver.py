"""Receiver throughput: full path (auth, validation, normalization, Kafka ack) vs a bare Flask + marshmallow endpoint.

Both run under the same gunicorn settings on this machine in the same run; wrk loads them in turn, several
rounds, and the ratio is the median of the rounds' ratios. A second reference, the bare endpoint that also
publishes the body with our publisher and waits for the ack, separates the cost of our code from the ack's
(`receiver_vs_acking_reference`, informative). The last line printed is `receiver_vs_reference=<ratio>`
(target >= 0.75).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONF = Path(os.environ.get("BENCH_GUNICORN_CONF", ROOT / "docker" / "gunicorn.conf.py"))
sys.path.insert(0, str(ROOT))

from smshooks.broker import LocalBroker, free_port  # noqa: E402

PAYLOAD = json.dumps({
    "message_id": "A1B2C3D4E5F60718293A4B5C6D7E8F90", "status": "delivered", "vendor_status": "DELIVRD",
    "occurred_at": "2024-03-05T10:15:42Z", "recipient": "+447700900123", "client_ref": "order-4411",
    "batch_id": "0F1E2D3C4B5A69788796A5B4C3D2E1F0", "vendor_code": 0, "parts": 1,
}, separators=(",", ":"))
SECRET = base64.b64encode(b"bench-secret-bench-secret-123456").decode()


def signed_headers() -> dict[str, str]:
    """Standard Webhooks headers for PAYLOAD, valid for the whole run (tolerance is set wide)."""
    message_id, timestamp = "msg_bench", str(int(time.time()))
    signed = f"{message_id}.{timestamp}.{PAYLOAD}".encode()
    signature = base64.b64encode(hmac.new(base64.b64decode(SECRET), signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": message_id, "webhook-timestamp": timestamp, "webhook-signature": f"v1,{signature}",
            "Content-Type": "application/json"}


def wrk_script(headers: dict[str, str], path: Path) -> Path:
    """A wrk Lua script that POSTs PAYLOAD with the headers."""
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(PAYLOAD)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def serve(target: str, port: int, env: dict[str, str], workers: int | None, threads: int | None) -> subprocess.Popen:
    """Start gunicorn with docker/gunicorn.conf.py (the production settings) and wait until it answers."""
    command = [str(Path(sys.executable).parent / "gunicorn"), "--chdir", str(ROOT), "-c", str(GUNICORN_CONF),
               "--bind", f"127.0.0.1:{port}", "--log-level", "warning", target]
    command += ["--workers", str(workers)] if workers else []
    command += ["--threads", str(threads)] if threads else []
    process = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # noqa: S310
            return process
        except urllib.error.HTTPError:
            return process  # the reference has no /healthz: a 404 means it is up
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{target} did not start")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants that are still running."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def load(port: int, script: Path, seconds: int, connections: int) -> dict[str, float]:
    """Run wrk and parse requests/s, p50 and p99 latency (ms) and non-2xx count."""
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}/v1/callbacks/generic/delivery-receipts"],
        capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": latency("50"),
            "p99": latency("99"), "errors": int(non_2xx.group(1)) if non_2xx else 0}


# loaded in this order every round: the reference (validate and answer), the same plus the Kafka ack, ours
TARGETS = (("reference", "bench.reference_app:app"), ("acking", "bench.reference_app:create_acking_app()"),
           ("receiver", "app:app"))


def measure(name: str, port: int, pid: int, broker_pid: int, script: Path, seconds: int, connections: int) -> dict:
    """One measured load of one server, with the CPU its processes and the broker spent per request."""
    before = tree_cpu_seconds(pid), tree_cpu_seconds(broker_pid)
    result = load(port, script, seconds, connections)
    after = tree_cpu_seconds(pid), tree_cpu_seconds(broker_pid)
    handled = max(result["rps"] * seconds, 1.0)
    # where the machine's CPU goes per request: the 2 cores are shared by server, broker and wrk
    result["server_us"] = (after[0] - before[0]) / handled * 1e6
    result["broker_us"] = (after[1] - before[1]) / handled * 1e6
    print(f"  {name:9} {result['rps']:7.0f} req/s  p50 {result['p50']:6.2f} ms  p99 {result['p99']:7.2f} ms  "
          f"CPU/request: server {result['server_us']:4.0f} us, broker {result['broker_us']:3.0f} us", flush=True)
    return result


def summary(name: str, runs: list[dict]) -> str:
    """Medians over the rounds of one server."""
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    return (f"{name:9} {med('rps'):9.0f} req/s  p50 {med('p50'):6.2f} ms  p99 {med('p99'):6.2f} ms  "
            f"non-2xx {sum(r['errors'] for r in runs)}  CPU per request: server {med('server_us'):.0f} us, "
            f"broker {med('broker_us'):.0f} us")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each measured load")
    parser.add_argument("--rounds", type=int, default=3,
                        help="reference and receiver are loaded in turn this many times; the ratio is the median")
    parser.add_argument("--connections", type=int, default=32)
    # 3 s left the broker's JIT cold for the first round: it spent 800-1,000 us per request there, ~250 after
    parser.add_argument("--warmup", type=int, default=10, help="seconds of load on each server before round 1")
    parser.add_argument("--workers", type=int, default=None, help="default: docker/gunicorn.conf.py's")
    parser.add_argument("--threads", type=int, default=None, help="default: docker/gunicorn.conf.py's")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is required: apt-get install wrk", file=sys.stderr)
        return 2
    broker = LocalBroker(free_port(), heap="512m", quick_start=False).start()
    work = Path(tempfile.mkdtemp(prefix="smshooks-bench-"))
    config = work / "bench.toml"
    config.write_text(
        'rate_limit_per_vendor = "1000000/second"\nrate_limit_per_source = "1000000/second"\nlog_level = "WARNING"\n'
        f'[vendors.generic]\nauth = [{{ scheme = "standard_webhooks", secret = "whsec_{SECRET}", '
        'tolerance_seconds = 86400 }]\n')
    env = {**os.environ, "SMSHOOKS_CONFIG": str(config), "SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "SMSHOOKS_DATA_DIR": str(work)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    script = wrk_script(signed_headers(), work / "post.lua")
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    results: dict[str, list[dict]] = {name: [] for name, _ in TARGETS}
    ratios = []
    try:
        # both stay up for the whole run (an idle one costs nothing) and are loaded in turn, so a slow spell of
        # this shared machine lands on both sides of a round instead of on one side of the whole comparison
        for name, target in TARGETS:
            port = free_port()
            servers[name] = serve(target, port, env, args.workers, args.threads), port
            load(port, script, args.warmup, args.connections)  # warm up: producers, topics, imports, broker JIT
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}/{args.rounds}", flush=True)
            for name, (server, port) in servers.items():
                results[name].append(measure(name, port, server.pid, broker.process.pid, script, args.seconds,
                                             args.connections))
            ratios.append(results["receiver"][-1]["rps"] / results["reference"][-1]["rps"])
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=15)
        broker.stop()
    for name, runs in results.items():
        print(summary(name, runs))
    print("ratio per round: " + ", ".join(f"{r:.3f}" for r in ratios))
    # informative, not the target: our full path against the bare endpoint that also waits for the same ack
    with_ack = [r["rps"] / a["rps"] for r, a in zip(results["receiver"], results["acking"], strict=True)]
    print(f"receiver_vs_acking_reference={statistics.median(with_ack):.3f}")
    if any(r["errors"] for runs in results.values() for r in runs):
        print("ERROR: some requests were not accepted", file=sys.stderr)
        return 1
    print(f"receiver_vs_reference={statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

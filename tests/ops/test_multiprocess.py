"""gunicorn with 2 workers against the real broker: /metrics sums every worker, logs are JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from smshooks.broker import free_port
from tests.ops.conftest import value

ROOT = Path(__file__).resolve().parents[2]
LABELS = {"vendor": "generic", "kind": "delivery-receipts"}
API_TOKEN = "session-token-for-the-multiprocess-tests"


@pytest.fixture(scope="module")
def server(broker, tmp_path_factory):
    """The receiver under docker/gunicorn.conf.py, 2 gthread workers, multiprocess metrics in a temp dir."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSHOOKS_", "PROMETHEUS_"))}
    env.update(
        SMSHOOKS_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2", GUNICORN_THREADS="4",
        SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers, SMSHOOKS_TOPIC_PREFIX=f"mp{uuid.uuid4().hex[:8]}.",
        SMSHOOKS_TOPIC_PARTITIONS="2", SMSHOOKS_DATA_DIR=str(tmp), PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"),
        SMSHOOKS_RATE_LIMIT_PER_SOURCE="100000/second", SMSHOOKS_API_TOKEN=API_TOKEN,
    )
    stdout = open(tmp / "stdout.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "docker/gunicorn.conf.py", "app:app"],
        cwd=ROOT, env=env, stdout=stdout, stderr=open(tmp / "stderr.log", "wb"), start_new_session=True,  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start: {(tmp / 'stderr.log').read_text()[-2000:]}")
            time.sleep(0.2)
    yield {"base": base, "data_dir": tmp, "dir": tmp / "prometheus", "stdout": tmp / "stdout.log", "process": process}
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    stdout.close()


def post(base: str, index: int) -> int:
    body = json.dumps({"message_id": f"mp-{index}", "status": "delivered", "recipient": "+447700900123"}).encode()
    request = urllib.request.Request(base + "/v1/callbacks/generic/delivery-receipts", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def per_worker_counts(directory: Path) -> dict[str, float]:
    """smshooks_callbacks_total{generic, delivery-receipts, 200} as stored in each worker's own file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        for key, count, *_ in MmapedDict.read_all_values_from_file(str(path)):
            name, sample, labels, _ = json.loads(key)
            if sample == "smshooks_callbacks_total" and labels == dict(LABELS, status="200"):
                counts[path.name] = counts.get(path.name, 0) + count
    return counts


def scrape(base: str) -> str:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        return response.read().decode()


def test_counts_add_up_across_workers(server):
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        # concurrent connections spread over both workers; keep going until both have served some
        while sent < 400 and (sent == 0 or len(per_worker_counts(server["dir"])) < 2):
            statuses = list(pool.map(lambda i: post(server["base"], i), range(sent, sent + 40)))
            assert statuses == [200] * 40
            sent += 40
    workers = per_worker_counts(server["dir"])
    assert len(workers) == 2, f"only {workers} served requests"
    assert sum(workers.values()) == sent
    for _ in range(6):  # whichever worker answers the scrape, it reports every worker's callbacks
        assert value(scrape(server["base"]), "smshooks_callbacks_total", status="200", **LABELS) == sent


def test_log_lines_are_json_with_request_ids_and_masked_numbers(server):
    request = urllib.request.Request(
        server["base"] + "/v1/callbacks/generic/inbound-messages", method="POST",
        data=json.dumps({"message_id": "mp-in", "from": "+447700900123", "to": "60777", "text": "STOP"}).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": "mp-request-0001"},
    )
    assert urllib.request.urlopen(request, timeout=15).status == 200
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server["stdout"].read_text().splitlines() if line.strip()]
        mine = [line for line in lines if line.get("request_id") == "mp-request-0001"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert mine and mine[0]["message"] == "request" and mine[0]["status"] == 200
    assert all("request_id" in line for line in lines if line.get("message") == "request")
    assert "447700900123" not in server["stdout"].read_text()


def test_demo_plays_a_mixed_stream_into_the_running_stack(server, monkeypatch):
    """The demo finds the session token `smshooks run` writes under data_dir (no --token, no environment)."""
    from click.testing import CliRunner

    from smshooks.cli import main
    from smshooks.session_token import TOKEN_FILE

    (server["data_dir"] / TOKEN_FILE).write_text(API_TOKEN + "\n")
    monkeypatch.delenv("SMSHOOKS_API_TOKEN", raising=False)
    monkeypatch.setenv("SMSHOOKS_DATA_DIR", str(server["data_dir"]))
    result = CliRunner().invoke(main, ["demo", "--url", server["base"], "--count", "40", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "40 sent messages" in result.output
    assert "/v1/reports/reconciliation?from=" in result.output
    # every vendor we serve, each callback accepted by its real adapter (the demo exits 1 on any 4xx)
    assert "vendors: fortytwo, generic, jasmin, mobivate, sinch, twilio, vonage" in result.output
    assert "countries: AU, FR, GB" in result.output
    link = next(line for line in result.output.splitlines() if "/v1/reports/reconciliation?" in line)
    query = dict(urllib.parse.parse_qsl(link.split("?", 1)[1].split("&format")[0]))
    ahead = datetime.fromisoformat(query["now"]) - datetime.now(UTC)
    assert ahead > timedelta(hours=72)  # messages without a receipt count as missing in the linked report
    text = scrape(server["base"])
    for vendor in ("jasmin", "mobivate", "sinch", "fortytwo", "twilio", "vonage"):
        assert value(text, "smshooks_callbacks_total", vendor=vendor, kind="delivery-receipts", status="200") >= 1

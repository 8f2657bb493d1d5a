"""The receiver's gunicorn worker spreads kept-alive connections over the workers (real gunicorn, real sockets)."""

from __future__ import annotations

import http.client
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability.conftest import ROOT, Gunicorn

SLOW_APP = '''
import os, time

def app(environ, start_response):
    """Answers with the worker's pid after 20 ms, like a request waiting for its Kafka ack."""
    time.sleep(0.02)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''
CONNECTIONS = 16
REQUESTS_PER_CONNECTION = 5


@pytest.fixture
def slow_server(tmp_path):
    """docker/gunicorn.conf.py (BalancedThreadWorker), 2 workers x 2 threads, serving SLOW_APP."""
    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    server = Gunicorn(tmp_path, {}, workers=2, threads=2, target="slowapp:app",
                      extra_args=("--chdir", str(tmp_path), "--pythonpath", str(ROOT)))
    yield server.port
    server.stop()


def pids_of_one_connection(connection: http.client.HTTPConnection) -> set[str]:
    """Several requests over one kept-alive connection; the pids that answered them."""
    try:
        pids = set()
        for _ in range(REQUESTS_PER_CONNECTION):
            connection.request("GET", "/")
            response = connection.getresponse()
            assert response.status == 200
            pids.add(response.read().decode())
        return pids
    finally:
        connection.close()


def test_kept_alive_connections_are_shared_by_the_workers(slow_server):
    """16 connections opened at once: stock gthread may give them all to one worker; ours gives each worker a share."""
    connections = [http.client.HTTPConnection("127.0.0.1", slow_server, timeout=10) for _ in range(CONNECTIONS)]
    for connection in connections:  # opened in one burst, as a load balancer's pool or wrk does
        connection.connect()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        answered = list(pool.map(pids_of_one_connection, connections))
    assert all(len(pids) == 1 for pids in answered), "a kept-alive connection moved between workers"
    per_worker = Counter(next(iter(pids)) for pids in answered)
    assert len(per_worker) == 2, f"one worker took every connection: {per_worker}"
    assert min(per_worker.values()) >= CONNECTIONS // 4, f"connections badly spread: {per_worker}"

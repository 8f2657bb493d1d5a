"""Slow clients against the real receiver under gunicorn (docker/gunicorn.conf.py) and the real broker, on
loopback: clients that trickle a body or header lines never stop intake, and get a 408 (or are closed) at the
read deadline.

Fixtures: the slow patterns an outside probe used (issue 12): headers with `Content-Length: 1000` and then one
byte every few seconds; header lines sent one by one, slowly. Normal callbacks are generic receipts (our own
documented shape). Every loop is bounded in count and time; the test stops by itself.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.reliability.conftest import Gunicorn

PATH = "/v1/callbacks/generic/delivery-receipts"
READ_DEADLINE = 4  # SMSHOOKS_REQUEST_READ_TIMEOUT for this server
SLOW_BODIES, SLOW_HEADERS = 8, 50  # per worker there are 2 x 4 threads in this test's server
NORMAL_CALLBACKS = 60
NORMAL_BOUND = 2.0  # seconds for one normal callback while the slow clients trickle


class SlowClient(threading.Thread):
    """One connection that sends its request a little at a time until the server answers or closes it."""

    def __init__(self, port: int, body: bool, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.body, self.stop = port, body, stop
        self.answer = b""
        self.closed_after: float | None = None

    def run(self) -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            if self.body:  # whole headers, then the declared body one byte per interval
                sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Content-Length: 1000\r\n\r\n".encode())
                pieces = [b"{"] + [b" "] * 999
            else:  # header lines one by one
                pieces = [f"POST {PATH} HTTP/1.1\r\n".encode()] + [f"X-Slow-{n}: {n}\r\n".encode() for n in range(99)]
            sock.settimeout(0.5)
            for piece in pieces:
                if self.stop.is_set():
                    return
                try:
                    sock.sendall(piece)
                    data = sock.recv(4096)  # anything back (a 408) or EOF ends the trickle
                except TimeoutError:
                    continue
                except OSError:
                    break
                self.answer = data
                break
            self.closed_after = time.monotonic() - started


def warm_up(base: str) -> None:
    """Concurrent callbacks on separate connections, so each worker has made its producer before the clock runs."""
    def post(index: int) -> int:
        body = {"message_id": f"warm-{index}", "status": "delivered"}
        return requests.post(base + PATH, json=body, timeout=30).status_code

    # the first publishes create the test's topics: on a loaded machine they can miss the publish timeout, and the
    # worker then fails fast for 2 s; warm up until a whole round is accepted
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(8) as pool:
        while set(answers := list(pool.map(post, range(16)))) != {200}:
            assert time.monotonic() < deadline, answers
            time.sleep(1)


def test_slow_clients_never_stop_intake_and_are_cut_at_the_read_deadline(broker, topic_prefix, tmp_path):
    server = Gunicorn(tmp_path, {"SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                                 "SMSHOOKS_TOPIC_PREFIX": topic_prefix, "SMSHOOKS_TOPIC_PARTITIONS": "2",
                                 "SMSHOOKS_REQUEST_READ_TIMEOUT": str(READ_DEADLINE)},
                      workers=2, threads=4)
    stop = threading.Event()
    slow = [SlowClient(server.port, body=True, stop=stop) for _ in range(SLOW_BODIES)]
    slow += [SlowClient(server.port, body=False, stop=stop) for _ in range(SLOW_HEADERS)]
    latencies, statuses = [], []
    try:
        warm_up(server.base)
        for client in slow:
            client.start()
        time.sleep(1)  # every slow client is connected and trickling
        session = requests.Session()
        for index in range(NORMAL_CALLBACKS):
            started = time.monotonic()
            try:
                response = session.post(server.base + PATH, timeout=NORMAL_BOUND + 5,
                                        json={"message_id": f"n-{uuid.uuid4().hex}-{index}", "status": "delivered"})
                statuses.append(response.status_code)
            except requests.RequestException as exc:
                statuses.append(type(exc).__name__)
            latencies.append(time.monotonic() - started)
            if statuses[-3:] != [200] * 3 and len(statuses) >= 3:
                break  # intake stopped: no need to wait for every remaining callback to time out
            time.sleep(0.05)
        joined_by = time.monotonic() + READ_DEADLINE + 10
        for client in slow:
            client.join(timeout=max(0.0, joined_by - time.monotonic()))
    finally:
        stop.set()
        server.stop()

    slowest = max(latencies)
    cut = [c for c in slow if c.closed_after is not None]
    longest = max((c.closed_after for c in cut), default=float("inf"))
    answered_408 = [c for c in cut if c.answer.startswith(b"HTTP/1.1 408")]
    print(f"\nslow clients: {SLOW_BODIES} trickling bodies + {SLOW_HEADERS} trickling headers; "
          f"{statuses.count(200)}/{NORMAL_CALLBACKS} normal callbacks answered 200, slowest {slowest:.2f}s; "
          f"{len(cut)} slow clients cut after at most {longest:.1f}s "
          f"({len(answered_408)} with a 408)")
    assert statuses == [200] * NORMAL_CALLBACKS, statuses
    assert slowest < NORMAL_BOUND, f"a normal callback took {slowest:.2f}s"
    assert len(cut) == len(slow), "a slow client was never cut off"
    # the deadline runs from the accept; the worker's main loop looks at deadlines once a second
    assert longest < READ_DEADLINE + 3, sorted(round(c.closed_after, 1) for c in cut)
    assert answered_408, "no slow client got a 408"
    assert b'"code": "request_timeout"' in answered_408[0].answer and b"X-Request-ID: " in answered_408[0].answer

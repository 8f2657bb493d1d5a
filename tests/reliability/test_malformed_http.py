"""Malformed HTTP against the real receiver under gunicorn (docker/gunicorn.conf.py) and the real broker, over raw
sockets: broken chunked bodies and oversized heads get a documented answer with our error body and X-Request-ID,
never a 500 or gunicorn's HTML page.

Fixtures: the malformed chunked bodies an outside probe sent (issue 12: truncated, unterminated, bad size, bad
extension) around a generic receipt (our own documented shape), and heads past gunicorn's limits (8190-byte header
field, 4094-byte request line).
"""

from __future__ import annotations

import json
import socket

import pytest

from tests.reliability.conftest import Gunicorn

PATH = "/v1/callbacks/generic/delivery-receipts"
BODY = b'{"message_id": "CH-1", "status": "delivered"}'
HEAD = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture(scope="module")
def server(broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("malformed")
    running = Gunicorn(tmp, {"SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                             "SMSHOOKS_TOPIC_PREFIX": "malformed.", "SMSHOOKS_REQUEST_READ_TIMEOUT": "5"},
                       workers=1, threads=2)
    yield running
    running.stop()


def exchange(port: int, request: bytes, half_close: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; read the answer until the server closes or 10 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < content_length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def content_length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def assert_error_body(status: int, headers: dict[str, str], body: bytes, code: str) -> None:
    assert headers["content-type"].startswith("application/json"), (status, headers, body[:200])
    error = json.loads(body)
    assert error["code"] == code and error["text"], error
    assert error["request_id"] and error["request_id"] == headers["x-request-id"]


@pytest.mark.parametrize(("name", "chunks", "half_close"), [
    ("truncated", b"%x\r\n%s" % (len(BODY), BODY[:10]), True),
    ("unterminated", b"%x\r\n%sXX0\r\n\r\n" % (len(BODY), BODY), False),
    ("bad size", b"zz\r\n%s\r\n0\r\n\r\n" % BODY, False),
    ("bad extension", b"%x;\x01\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY), False),
])
def test_malformed_chunked_bodies_are_400_with_our_error_body(server, name, chunks, half_close):
    status, headers, body = exchange(server.port, HEAD.encode() + chunks, half_close)
    assert status == 400, (name, body[:300])
    assert_error_body(status, headers, body, "syntax_malformed_body")
    assert "Traceback" not in server.stderr_path.read_text()


def test_a_chunk_larger_than_what_follows_is_a_408_at_the_read_deadline(server):
    """Valid framing that declares more than the client sends: the client is slow, not wrong."""
    request = HEAD.encode() + b"ffffffffffffffffffff\r\n%s\r\n0\r\n\r\n" % BODY
    status, headers, body = exchange(server.port, request)
    assert status == 408
    assert_error_body(status, headers, body, "request_timeout")


def test_a_well_formed_chunked_body_is_accepted(server):
    request = HEAD.encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    status, _, body = exchange(server.port, request)
    assert status == 200 and json.loads(body)["status"] == "accepted"


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (f"GET {PATH}?x={'a' * 5000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 414, "uri_too_long"),
    (f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 9000}\r\nContent-Length: 0\r\n\r\n".encode(), 431,
     "request_header_fields_too_large"),
    (b"GET /v1/callbacks/jasmin/delivery-receipts/s3cr3t HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400,
     "syntax_malformed_request"),
])
def test_what_gunicorn_refuses_has_our_error_body(server, request_bytes, status, code):
    answered, headers, body = exchange(server.port, request_bytes)
    assert answered == status, body[:300]
    assert_error_body(answered, headers, body, code)
    assert b"s3cr3t" not in body
    assert "s3cr3t" not in server.stderr_path.read_text()  # gunicorn's warning quotes the request line, masked


def test_expect_100_continue_is_answered_before_the_body_and_only_once(server):
    """curl, .NET and Java clients send `Expect: 100-continue` and hold the body back until they hear 100: the
    worker, which reads the whole request before a thread takes it, must say it itself."""
    head = (f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        sock.settimeout(2)  # the worker's own answer, not the read deadline (5 s) or the client's patience
        interim = sock.recv(64)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        sock.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < content_length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]  # no second 100 before the final answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] == "accepted"


def test_pipelined_requests_are_both_answered(server):
    """Two requests in one write: the worker read both ahead; the second must not wait for more bytes."""
    one = (f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    with socket.create_connection(("127.0.0.1", server.port), timeout=4) as sock:
        sock.sendall(one + one)
        answer = b""
        while answer.count(b"HTTP/1.1 200 ") < 2:
            data = sock.recv(65536)  # a timeout (4 s, inside the 5 s read deadline) fails the test
            if not data:
                break
            answer += data
    assert answer.count(b"HTTP/1.1 200 ") == 2, answer[:400]

"""JSON log lines: one per request with the request id, phone numbers masked, secrets never written."""

from __future__ import annotations

import io
import json
import logging

import pytest

from processors import observability as processor_observability
from receiver import observability


@pytest.fixture
def log_lines():
    """Lines written through the receiver's JSON handler during the test, parsed."""
    stream = io.StringIO()
    handler = observability.json_handler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous)


def test_one_json_line_per_request_with_the_request_id(client, log_lines):
    response = client.post("/v1/callbacks/generic/inbound-messages", headers={"X-Request-ID": "req-12345678"},
                           json={"message_id": "in-1", "from": "+447700900123", "to": "60777", "text": "STOP"})
    assert response.status_code == 200
    [line] = [line for line in log_lines() if line.get("message") == "request"]
    assert line["request_id"] == "req-12345678"
    assert line["method"] == "POST" and line["status"] == 200
    assert line["path"] == "/v1/callbacks/generic/inbound-messages"
    assert line["vendor"] == "generic" and line["kind"] == "inbound-messages" and line["event_count"] == 1
    assert isinstance(line["duration_ms"], float)
    assert {"asctime", "level", "name"} <= set(line)


def test_url_token_and_phone_numbers_are_masked(client, log_lines):
    client.post("/v1/callbacks/generic/delivery-receipts/s3cr3t-token?token=abc", json={})
    logging.getLogger("smshooks.test").warning("receipt for %s from +44 7700 900124", "447700900123",
                                               extra={"recipient": "+447700900125"})
    text = "\n".join(json.dumps(line) for line in log_lines())
    assert "s3cr3t-token" not in text and "token=abc" not in text
    assert "447700900123" not in text and "7700 900124" not in text and "447700900125" not in text
    assert "*********123" in text and "+** **** ***124" in text and "+*********125" in text
    request_line = next(line for line in log_lines() if line.get("message") == "request")
    assert request_line["path"] == "/v1/callbacks/generic/delivery-receipts/<redacted>"


@pytest.mark.parametrize("text", [
    "to 447700900123 and +1 415 555 0100",
    "GET /x?token=t0k&sig=abc Authorization: Bearer xyz.abc",
    "ids 6f1d7f0e-5a2b-4c1e-9a57-3d5c2b9e8a10 at 2024-03-05T10:15:42Z offset 1234567",
])
def test_receiver_and_processors_mask_alike(text):
    assert observability.mask(text) == processor_observability.mask(text)


def test_mask_keeps_ids_times_and_short_numbers():
    text = "event 6f1d7f0e-5a2b-4c1e-9a57-3d5c2b9e8a10 at 2024-03-05T10:15:42Z offset 1234567 took 12.5 ms"
    assert observability.mask(text) == text
    assert observability.mask("sig=abc&token=def") == "sig=<redacted>&token=<redacted>"


def test_kafka_python_info_lines_are_quiet_at_info():
    """kafka-python logs each connection and group step at INFO: ~25 lines before `make run`'s banner."""
    import logging

    from core.logs import configure_logging

    configure_logging("INFO")
    assert logging.getLogger("kafka.conn").getEffectiveLevel() == logging.WARNING
    configure_logging("DEBUG")
    assert logging.getLogger("kafka.conn").getEffectiveLevel() == logging.WARNING
    configure_logging("ERROR")
    assert logging.getLogger("kafka").getEffectiveLevel() == logging.ERROR
    configure_logging("INFO")


def test_tracebacks_and_stacks_are_masked(log_lines):
    """python-json-logger renders exc_info itself: the number, token and bearer value of an exception's message (or
    of a local in a frame line) were written in clear."""
    logger = logging.getLogger("smshooks.test")
    try:
        raise ValueError("no route for 447700900123 at /x?token=s3cr3t with Authorization: Bearer abc.def")
    except ValueError:
        logger.exception("unhandled error")
    logger.warning("where we were for +447700900124", stack_info=True)
    lines = log_lines()
    text = "\n".join(json.dumps(line) for line in lines)
    assert "447700900123" not in text and "s3cr3t" not in text and "abc.def" not in text
    assert "447700900124" not in text
    [error] = [line for line in lines if line.get("message") == "unhandled error"]
    assert "ValueError" in error["exc_info"] and "*********123" in error["exc_info"]
    assert "token=<redacted>" in error["exc_info"] and "Bearer <redacted>" in error["exc_info"]
    [warning] = [line for line in lines if line.get("message", "").startswith("where we were")]
    assert "test_tracebacks_and_stacks_are_masked" in warning["stack_info"]


@pytest.mark.parametrize("path", [
    "/v1/callbacks/jasmin/delivery-receipts/s3cr3t-token/",  # no route: 404, and the request line was logged raw
    "/v1/callbacks/jasmin/delivery-receipts/s3cr3t-token%2f",
    "/v1/callbacks/jasmin/delivery-receipts/s3cr3t-token/extra",
    "/v1/callbacks/jasmin/delivery-receipts/s3cr3t-token",
])
def test_url_tokens_are_redacted_when_the_path_matches_no_route(client, log_lines, path):
    response = client.get(path)
    text = "\n".join(json.dumps(line) for line in log_lines())
    assert "s3cr3t" not in text, text
    [line] = [line for line in log_lines() if line.get("message") == "request"]
    assert line["path"] == "/v1/callbacks/jasmin/delivery-receipts/<redacted>"
    assert line["status"] == response.status_code


def test_mask_redacts_url_tokens_in_any_text():
    line = 'Invalid request line: "GET /v1/callbacks/jasmin/delivery-receipts/s3cr3t/x?id=1 HTTP/1.1"'
    assert observability.mask(line) == ('Invalid request line: "GET /v1/callbacks/jasmin/delivery-receipts/<redacted>'
                                        '?id=1 HTTP/1.1"')
    assert observability.mask("/v1/callbacks/jasmin/delivery-receipts") == "/v1/callbacks/jasmin/delivery-receipts"

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

    from smshooks.logs import configure_logging

    configure_logging("INFO")
    assert logging.getLogger("kafka.conn").getEffectiveLevel() == logging.WARNING
    configure_logging("DEBUG")
    assert logging.getLogger("kafka.conn").getEffectiveLevel() == logging.WARNING
    configure_logging("ERROR")
    assert logging.getLogger("kafka").getEffectiveLevel() == logging.ERROR
    configure_logging("INFO")

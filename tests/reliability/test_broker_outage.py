"""The broker is cut off (proxy closed) under load: 200 means on Kafka, 503 with Retry-After while it is away,
no 500, no hang beyond the publish timeout, recovery without a restart."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from core.events import topic_name
from receiver.publisher import PROBE_INTERVAL_SECONDS
from tests.conftest import consume_all
from tests.reliability.conftest import Gunicorn
from tests.reliability.load import Load

PUBLISH_TIMEOUT = 2
RETRY_AFTER = "7"
# beyond the publish timeout: a request that waited for the producer lock may still block in send() for the
# producer's metadata wait (max_block_ms = the timeout), so the worst case is ~2 x timeout (see RELIABILITY.md)
MARGIN = PUBLISH_TIMEOUT + 2.0
PATH = "/v1/callbacks/generic/delivery-receipts"


def receipt(prefix: str):
    """A request factory: generic receipts with unique message ids."""

    def make(index: int) -> tuple[str, dict]:
        return PATH, {"json": {"message_id": f"{prefix}-{index}", "status": "delivered",
                               "recipient": "+447700900123"}}

    return make


def wait_for_200(base: str, timeout: float) -> float:
    """Post until one callback is accepted; return when (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = {"message_id": f"probe-{uuid.uuid4().hex}", "status": "delivered"}
        try:
            if requests.post(base + PATH, json=body, timeout=PUBLISH_TIMEOUT + MARGIN).status_code == 200:
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no 200 within {timeout}s")


def confluent_installed() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return False
    return True



@pytest.mark.parametrize("producer", ["kafka-python", "confluent"])
def test_broker_cut_under_load_loses_no_accepted_callback(proxied_broker, tmp_path, producer):
    prefix = f"out{uuid.uuid4().hex[:8]}."
    server = Gunicorn(tmp_path, {"SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": proxied_broker.bootstrap_servers,
                                 "SMSHOOKS_TOPIC_PREFIX": prefix, "SMSHOOKS_TOPIC_PARTITIONS": "3",
                                 "SMSHOOKS_PUBLISH_TIMEOUT_SECONDS": str(PUBLISH_TIMEOUT),
                                 "SMSHOOKS_RETRY_AFTER_SECONDS": RETRY_AFTER, "SMSHOOKS_KAFKA_PRODUCER": producer})
    proxy = proxied_broker.proxy
    try:
        wait_for_200(server.base, 30)
        load = Load(server.base, receipt(uuid.uuid4().hex[:8]), threads=12, limit=20_000,
                    timeout=PUBLISH_TIMEOUT + 20).start()
        time.sleep(3)
        cut_started = time.monotonic()
        proxy.cut()
        # the outage begins when cut() returns: until then a connection may still carry an ack
        cut_at = time.monotonic()
        time.sleep(6)
        restored_at = time.monotonic()
        proxy.restore()
        recovered_at = wait_for_200(server.base, 20)
        time.sleep(3 + PROBE_INTERVAL_SECONDS + PUBLISH_TIMEOUT)
        answers = load.stop()
        assert server.process.poll() is None, "gunicorn died"
    finally:
        server.stop()

    errors = [a for a in answers if a.status is None]
    assert not errors, f"{len(errors)} requests got no answer, e.g. {errors[0].error}"
    statuses = {a.status for a in answers}
    assert statuses <= {200, 503}, statuses
    unavailable = [a for a in answers if a.status == 503]
    for answer in unavailable:
        assert answer.headers.get("Retry-After") == RETRY_AFTER
        assert answer.body["code"] == "service_unavailable" and answer.body["request_id"]
    during = [a for a in answers if a.started > cut_at and a.ended < restored_at]
    assert during and all(a.status == 503 for a in during), "a request during the outage was not answered 503"
    slowest = max(a.seconds for a in answers)
    assert slowest <= PUBLISH_TIMEOUT + MARGIN, f"a request took {slowest:.1f}s"
    # each worker fails fast while it knows Kafka down and sees it back at its next probe (receiver/publisher.py):
    # one probe interval plus a probe that may have started just before the restore
    after = [a for a in answers if a.started > recovered_at + PROBE_INTERVAL_SECONDS + PUBLISH_TIMEOUT + 0.5]
    assert after and all(a.status == 200 for a in after), "the receiver did not recover"
    before = [a for a in answers if a.ended < cut_started]
    assert before and all(a.status == 200 for a in before)

    accepted = {event_id for a in answers if a.status == 200 for event_id in a.body["event_ids"]}
    records = consume_all(proxied_broker.bootstrap_servers, topic_name(prefix, "sms.delivery-receipts"),
                          len(accepted), timeout=60)
    on_kafka = {dict(r.headers)["ce_id"].decode() for r in records}
    missing = accepted - on_kafka
    print(f"\nbroker outage ({producer}): {len(answers)} requests, {len(accepted)} accepted (200), "
          f"{len(unavailable)} answered 503 "
          f"({len(during)} wholly inside the {restored_at - cut_at:.1f}s cut, which took {cut_at - cut_started:.3f}s), "
          f"slowest {slowest:.2f}s, "
          f"recovered {recovered_at - restored_at:.2f}s after restore, {len(on_kafka)} events on Kafka, "
          f"{len(missing)} accepted but missing, proxy cuts {proxy.cuts}")
    assert not missing, f"{len(missing)} callbacks answered 200 are not on Kafka"


@pytest.mark.parametrize("producer", ["kafka-python", "confluent"])
def test_once_kafka_is_known_down_requests_fail_fast_and_recovery_is_seen(proxied_broker, topic_prefix, producer):
    """Before: every request waited the whole publish timeout while the broker was away (8 threads x 5 s answered
    1.6 requests/s); now the first failure marks Kafka down, the others get 503 at once, a probe a second retries."""
    from receiver import create_app

    app = create_app({"kafka_bootstrap_servers": proxied_broker.bootstrap_servers, "topic_prefix": topic_prefix,
                      "publish_timeout_seconds": PUBLISH_TIMEOUT, "retry_after_seconds": int(RETRY_AFTER),
                      "kafka_producer": producer})
    client = app.test_client()
    body = {"message_id": "ff-0", "status": "delivered"}
    try:
        assert client.post(PATH, json=body).status_code == 200
        proxied_broker.proxy.cut()
        assert client.post(PATH, json=dict(body, message_id="ff-1")).status_code == 503  # waits the timeout
        fast = []
        for index in range(20):
            started = time.monotonic()
            response = client.post(PATH, json=dict(body, message_id=f"ff-fast-{index}"))
            fast.append(time.monotonic() - started)
            assert response.status_code == 503 and response.headers["Retry-After"] == RETRY_AFTER
            if sum(fast) > 0.5:  # the next one may be the probe that waits the timeout
                break
        proxied_broker.proxy.restore()
        recovered = None
        deadline = time.monotonic() + 30
        while recovered is None and time.monotonic() < deadline:
            if client.post(PATH, json=dict(body, message_id=f"ff-back-{uuid.uuid4().hex}")).status_code == 200:
                recovered = time.monotonic()
            time.sleep(0.1)
    finally:
        app.extensions["smshooks.publisher"].close()
    print(f"\nfail fast ({producer}): {len(fast)} requests answered 503 in at most {max(fast) * 1000:.0f} ms while "
          f"Kafka was known down")
    assert len(fast) >= 5 and max(fast) < 0.2, fast
    assert recovered is not None, "no 200 within 30 s of the broker coming back"

"""The edge spool: while Kafka is cut off (a proxy in front of a real broker), callbacks are answered 200 from a
durable spool, and the forwarder puts every one on Kafka exactly once, in order per key, once the broker is back.

Callbacks are the vendors' documented shapes (Mobivate's receipt from shared/seeds, Twilio's status callback form
fields, Sinch's recipient delivery report) as the vendor modules' own tests use them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter

import pytest
import requests

from core.events import topic_name
from receiver import create_app
from receiver.spool import Spool
from tests.conftest import consume_all
from tests.receiver.conftest import client_maker
from tests.reliability.conftest import Gunicorn

RECEIPTS = "sms.delivery-receipts"


def mobivate_receipt(index: int, status: str = "DELIVERED") -> tuple[str, dict]:
    return "/v1/callbacks/mobivate/delivery-receipts", {"json": {
        "deliveryMessageId": f"{index:032x}", "status": status, "recipient": "447700900123",
        "created": "2024-03-05T10:15:42"}}


def twilio_status(index: int, status: str = "delivered") -> tuple[str, dict]:
    return "/v1/callbacks/twilio/delivery-receipts", {"data": {
        "MessageSid": f"SM{index:032x}", "MessageStatus": status, "To": "+447700900123", "From": "+15005550006",
        "AccountSid": "AC00000000000000000000000000000001"}}


def sinch_report(index: int, status: str = "Delivered") -> tuple[str, dict]:
    return "/v1/callbacks/sinch/delivery-receipts", {"json": {
        "type": "recipient_delivery_report_sms", "batch_id": f"01HZX3K9Q2M4N6P8R0T2V4{index:04d}",
        "recipient": "447700900123", "code": 0, "status": status, "at": "2024-03-05T10:15:42Z"}}


@pytest.fixture
def spooling(proxied_broker, topic_prefix, tmp_path):
    """`make(**overrides)`: test clients of the receiver with a spool, all sharing one spool file."""
    with client_maker(create_app, kafka_bootstrap_servers=proxied_broker.bootstrap_servers,
                      topic_prefix=topic_prefix, topic_partitions=3, publish_timeout_seconds=3,
                      spool_enabled=True, spool_path=str(tmp_path / "spool" / "receiver.sqlite3"),
                      spool_after_seconds=0.5) as make:
        yield make


def drain(publisher, timeout: float = 30) -> None:
    """Forward until the spool is empty (entries whose first send failed wait out the producers' timeout)."""
    deadline = time.monotonic() + timeout
    while publisher.spool.holds_entries() and time.monotonic() < deadline:
        publisher.forwarder.forward_once() or time.sleep(0.2)
    assert publisher.spool.depth() == 0 and not publisher.spool.holds_entries()


def records_by_id(bootstrap: str, prefix: str, expected: int) -> list:
    return consume_all(bootstrap, topic_name(prefix, RECEIPTS), expected, timeout=30)


def test_callbacks_are_spooled_while_kafka_is_away_and_forwarded_once_in_order(
        spooling, proxied_broker, topic_prefix):
    client = spooling()
    publisher = client.application.extensions["smshooks.publisher"]
    path, kwargs = mobivate_receipt(0)
    first = client.post(path, **kwargs)
    assert first.status_code == 200  # Kafka up: published directly (or, on a loaded machine, spooled and forwarded)
    drain(publisher)

    proxied_broker.proxy.cut()
    answered = []
    for index in range(1, 7):
        for make in (mobivate_receipt, twilio_status, sinch_report):
            path, kwargs = make(index)
            started = time.monotonic()
            response = client.post(path, **kwargs)
            assert response.status_code == 200, response.get_data(as_text=True)
            assert time.monotonic() - started < 3  # the spool deadline, not the publish timeout
            answered += response.get_json()["event_ids"]
    # a second status of the same message: must stay behind the first on its key
    path, kwargs = mobivate_receipt(1, status="UNDELIVERABLE")
    answered += client.post(path, **kwargs).get_json()["event_ids"]
    assert publisher.spool.depth() == len(answered) == 19
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "degraded"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "smshooks_spool_depth 19.0" in metrics

    proxied_broker.proxy.restore()
    drain(publisher)

    records = records_by_id(proxied_broker.bootstrap_servers, topic_prefix, 20)
    ids = [dict(r.headers)["ce_id"].decode() for r in records]
    assert Counter(ids) == Counter([*first.get_json()["event_ids"], *answered])  # each exactly once
    key = f"mobivate:{1:032x}".encode()
    statuses = [json.loads(r.value)["vendor_status"] for r in records if r.key == key]
    assert statuses == ["DELIVERED", "UNDELIVERABLE"]  # arrival order kept on the key
    assert client.get("/readyz").get_json()["status"] == "ready"


def test_a_vendor_configured_to_retry_gets_503_while_others_are_spooled(spooling, proxied_broker):
    client = spooling(vendors={"sinch": {"when_kafka_is_down": "retry"}})
    proxied_broker.proxy.cut()
    path, kwargs = sinch_report(1)
    refused = client.post(path, **kwargs)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    path, kwargs = twilio_status(1)
    assert client.post(path, **kwargs).status_code == 200
    assert client.application.extensions["smshooks.publisher"].spool.depth() == 1


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 1 MiB tmpfs: the spool fills the disk, not its own size limit."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (needs root): {done.stderr.decode()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_answers_503_and_never_a_200_without_a_durable_entry(
        proxied_broker, topic_prefix, tiny_filesystem):
    spool_path = tiny_filesystem / "receiver.sqlite3"
    with client_maker(create_app, kafka_bootstrap_servers=proxied_broker.bootstrap_servers,
                      topic_prefix=topic_prefix, publish_timeout_seconds=2, spool_enabled=True,
                      spool_path=str(spool_path), spool_after_seconds=0.2,
                      rate_limit_per_source="100000/second", rate_limit_per_vendor="100000/second") as make:
        client = make()
        proxied_broker.proxy.cut()
        accepted, refused = [], 0
        padding = "x" * 3000
        for index in range(600):
            path, kwargs = mobivate_receipt(index)
            kwargs["json"]["description"] = padding  # kept in raw: fills the disk faster
            response = client.post(path, **kwargs)
            if response.status_code == 200:
                assert refused == 0, "a 200 after the disk was full"
                accepted += response.get_json()["event_ids"]
            else:
                assert response.status_code == 503 and response.get_json()["code"] == "service_unavailable"
                refused += 1
        assert accepted and refused, (len(accepted), refused)
    spooled = Spool(spool_path, max_bytes=1 << 30, max_age_seconds=3600).oldest(10_000)
    assert sorted(dict(e.record[2])["ce_id"].decode() for e in spooled) == sorted(accepted)


@pytest.mark.slow
def test_a_receiver_killed_while_its_spool_holds_entries_forwards_them_after_restart(proxied_broker, tmp_path):
    prefix = f"spk{uuid.uuid4().hex[:8]}."
    env = {"SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": proxied_broker.bootstrap_servers, "SMSHOOKS_TOPIC_PREFIX": prefix,
           "SMSHOOKS_SPOOL_ENABLED": "1", "SMSHOOKS_SPOOL_AFTER_SECONDS": "0.5",
           "SMSHOOKS_PUBLISH_TIMEOUT_SECONDS": "3"}
    server = Gunicorn(tmp_path, env)
    answered = []
    try:
        path, kwargs = mobivate_receipt(0)
        answered += requests.post(server.base + path, timeout=10, **kwargs).json()["event_ids"]  # Kafka up
        proxied_broker.proxy.cut()
        for index in range(1, 31):
            path, kwargs = (mobivate_receipt, twilio_status, sinch_report)[index % 3](index)
            response = requests.post(server.base + path, timeout=10, **kwargs)
            assert response.status_code == 200, response.text
            answered += response.json()["event_ids"]
        spool = Spool(tmp_path / "spool" / "receiver.sqlite3", max_bytes=1 << 30, max_age_seconds=3600)
        # the 30 sent while Kafka was cut, and the first one too when a loaded machine missed its 0.5 s deadline
        assert 30 <= spool.depth() <= 31
        for pid in [server.process.pid, *server.workers()]:
            os.kill(pid, signal.SIGKILL)  # no goodbye: whatever is not on disk is lost
        server.process.wait()
    finally:
        server.stop()
    proxied_broker.proxy.restore()
    restarted = Gunicorn(tmp_path, env)
    try:
        records = consume_all(proxied_broker.bootstrap_servers, topic_name(prefix, RECEIPTS), len(answered) + 1,
                              timeout=60)
    finally:
        restarted.stop()
    ids = Counter(dict(r.headers)["ce_id"].decode() for r in records)
    assert set(ids) == set(answered) and max(ids.values()) == 1, ids  # all forwarded, none twice
    assert Spool(tmp_path / "spool" / "receiver.sqlite3", max_bytes=1 << 30, max_age_seconds=3600).depth() == 0


def _stream(index: int) -> list[tuple[str, dict]]:
    """Callback `index` of the paced stream: each message gets a pending status, then its final one."""
    kind = index % 3
    if kind == 0:
        return [mobivate_receipt(index, "ENROUTE"), mobivate_receipt(index, "DELIVERED")]
    if kind == 1:
        return [twilio_status(index, "sent"), twilio_status(index, "delivered")]
    return [sinch_report(index, "Dispatched"), sinch_report(index, "Delivered")]


def _sent_messages(count: int) -> list:
    from tests.processors.factories import sent

    messages = []
    for index in range(count):
        if index % 3 == 0:
            messages.append(sent("mobivate", f"{index:032x}", recipient="+447700900123"))
        elif index % 3 == 1:
            messages.append(sent("twilio", f"SM{index:032x}", recipient="+447700900123"))
        else:
            messages.append(sent("sinch", f"01HZX3K9Q2M4N6P8R0T2V4{index:04d}:447700900123",
                                 recipient="+447700900123"))
    return messages


def _processed_state(settings, count: int) -> set:
    """Run every processor until each message has its final status; (vendor, id, status, conflict) of all."""
    from sqlalchemy import select

    from processors.db import upgrade
    from processors.db.engine import make_engine
    from processors.db.models import SentMessage
    from tests.processors.factories import running, wait_for

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)

    def state():
        with engine.connect() as connection:
            return {tuple(row) for row in connection.execute(
                select(SentMessage.vendor, SentMessage.message_id, SentMessage.status, SentMessage.conflict))}

    try:
        with running(settings):
            wait_for(lambda: sum(1 for row in state() if row[2] == "delivered") == count, timeout=120)
        return state()
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_30_second_broker_outage_under_a_paced_stream_loses_and_doubles_nothing(proxied_broker, tmp_path):
    from tests.processors.factories import create_all_topics, publish, settings_for

    count = 150  # messages, two callbacks each, one every 0.13 s: the stream (~39 s) spans the 30 s outage
    outage_prefix, baseline_prefix = f"out{uuid.uuid4().hex[:8]}.", f"base{uuid.uuid4().hex[:8]}."
    env = {"SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": proxied_broker.bootstrap_servers,
           "SMSHOOKS_TOPIC_PREFIX": outage_prefix, "SMSHOOKS_SPOOL_ENABLED": "1",
           "SMSHOOKS_SPOOL_AFTER_SECONDS": "0.5", "SMSHOOKS_PUBLISH_TIMEOUT_SECONDS": "3"}
    outage = settings_for(proxied_broker.bootstrap_servers, outage_prefix, f"sqlite:///{tmp_path / 'outage.db'}")
    create_all_topics(outage)
    publish(outage, _sent_messages(count))
    (tmp_path / "receiver").mkdir()
    server = Gunicorn(tmp_path / "receiver", env)
    answers, answered_ids = Counter(), []
    try:
        started = time.monotonic()
        cut_at, cut, restored = started + 5, False, False
        for index in range(count):
            for path, kwargs in _stream(index):
                now = time.monotonic()
                if now >= cut_at and not cut:
                    proxied_broker.proxy.cut()
                    cut = True
                if cut and not restored and now >= cut_at + 30:
                    proxied_broker.proxy.restore()
                    restored = True
                response = requests.post(server.base + path, timeout=10, **kwargs)
                answers[response.status_code] += 1
                if response.status_code == 200:
                    answered_ids += response.json()["event_ids"]
                time.sleep(max(0.0, 0.13 - (time.monotonic() - now)))
        if not restored:
            proxied_broker.proxy.restore()
        assert restored, "the stream must outlast the outage"
        assert answers == {200: 2 * count}, answers  # every callback answered 200, through the outage
        records = consume_all(proxied_broker.bootstrap_servers, topic_name(outage_prefix, RECEIPTS), 2 * count,
                              timeout=90)
    finally:
        server.stop()
    ids = Counter(dict(r.headers)["ce_id"].decode() for r in records)
    assert set(ids) == set(answered_ids) and max(ids.values()) == 1  # on Kafka exactly once per event id
    statuses: dict[bytes, list[str]] = {}
    for record in records:
        statuses.setdefault(record.key, []).append(json.loads(record.value)["status"])
    assert all(values == ["pending", "delivered"] for values in statuses.values()), statuses  # order per key

    baseline = settings_for(proxied_broker.bootstrap_servers, baseline_prefix, f"sqlite:///{tmp_path / 'base.db'}")
    create_all_topics(baseline)
    publish(baseline, _sent_messages(count))
    with client_maker(create_app, kafka_bootstrap_servers=proxied_broker.bootstrap_servers,
                      topic_prefix=baseline_prefix) as make:
        client = make()
        for index in range(count):
            for path, kwargs in _stream(index):
                assert client.post(path, **kwargs).status_code == 200
    assert _processed_state(outage, count) == _processed_state(baseline, count)  # as if there was no outage

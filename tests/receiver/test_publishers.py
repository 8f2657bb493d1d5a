"""Both producers (librdkafka and kafka-python) honour the same contract: acked events, 503 when Kafka is away."""

from __future__ import annotations

import time

import pytest

from receiver import create_app
from receiver.confluent_publisher import ConfluentPublisher
from receiver.publisher import KafkaPublisher
from smshooks.broker import free_port

RECEIPT = {"message_id": "PUB-1", "status": "delivered", "occurred_at": "2024-03-05T10:15:42Z"}
PRODUCERS = {"confluent": ConfluentPublisher, "kafka-python": KafkaPublisher}


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_each_producer_publishes_the_same_event(make_client, published, producer):
    client = make_client(kafka_producer=producer)
    assert isinstance(client.application.extensions["smshooks.publisher"], PRODUCERS[producer])
    response = client.post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT)
    assert response.status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.id == response.get_json()["event_ids"][0]
    assert event.key == "generic:PUB-1" and event.payload.status == "delivered"


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_each_producer_answers_503_within_the_timeout_when_kafka_is_away(producer):
    app = create_app({"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}", "publish_timeout_seconds": 1,
                      "kafka_producer": producer})
    client = app.test_client()
    for _ in range(2):  # the second request must not wait for the first one's failed connection
        started = time.monotonic()
        response = client.post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT)
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert time.monotonic() - started < 2.5
    app.extensions["smshooks.publisher"].close()


def test_auto_prefers_librdkafka():
    app = create_app({"kafka_bootstrap_servers": "127.0.0.1:9", "kafka_producer": "auto"})
    assert isinstance(app.extensions["smshooks.publisher"], ConfluentPublisher)


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_nothing_to_publish_is_an_answer_not_a_wait_and_keeps_the_producer(make_client, producer):
    client = make_client(kafka_producer=producer, publish_timeout_seconds=1)
    publisher = client.application.extensions["smshooks.publisher"]
    assert client.post("/v1/callbacks/generic/delivery-receipts", json=RECEIPT).status_code == 200
    producer_before = publisher._producer
    publisher.publish([])  # a wait for zero delivery reports never ended: PublishUnavailable, producer discarded
    assert publisher._producer is producer_before

"""Build kafka-python clients so that one whose bootstrap fails leaves no thread or socket behind.

kafka-python (3.x) starts its network client, with an IO thread and sockets, before bootstrapping in the
constructor, and does not close it when the bootstrap times out: every failed attempt while Kafka is away
leaked a thread (admin, consumer) and a few file descriptors (all three), held for good.
"""

from __future__ import annotations

from typing import Any, TypeVar

from kafka.net.compat import KafkaNetClient

Client = TypeVar("Client")


def build(client_class: type[Client], *args: Any, **configs: Any) -> Client:
    """`client_class(*args, **configs)`, closing the network client it made when the constructor raises."""
    made: list[KafkaNetClient] = []

    def tracked(**client_configs: Any) -> KafkaNetClient:
        client = KafkaNetClient(**client_configs)
        made.append(client)
        return client

    try:
        return client_class(*args, kafka_client=tracked, **configs)
    except BaseException:
        for client in made:
            client.close()
        raise

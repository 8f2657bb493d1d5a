"""The local Apache Kafka launcher's checks that need no JVM: the pinned version, cluster ids, what a machine without
Java or Maven is told (one line naming the packages)."""

from __future__ import annotations

import base64
import re

import pytest

from smshooks import broker
from smshooks.broker import BrokerUnavailable, ensure_kafka, kafka_home, kafka_version, new_cluster_id


def test_the_version_is_pinned_in_the_maven_descriptor():
    assert re.fullmatch(r"4\.\d+\.\d+", kafka_version())


def test_the_cache_follows_the_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SMSHOOKS_KAFKA_HOME", str(tmp_path / "k"))
    assert kafka_home() == tmp_path / "k"
    monkeypatch.delenv("SMSHOOKS_KAFKA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kafka_home() == tmp_path / "smshooks" / f"kafka-{kafka_version()}"


def test_a_cluster_id_is_16_bytes_in_unpadded_url_safe_base64():
    found = new_cluster_id()
    assert len(found) == 22 and "=" not in found
    assert len(base64.urlsafe_b64decode(found + "==")) == 16
    assert new_cluster_id() != found


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    """kafka-storage would read `--cluster-id -x…` as a missing argument: one random id in 64 did that."""
    import uuid

    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)])  # the first encodes as "-A…"
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(drawn))
    assert new_cluster_id() == base64.urlsafe_b64encode(b"\x01" * 16).decode().rstrip("=")


@pytest.mark.parametrize(("missing", "named"), [("java", "no `java` on PATH"), ("mvn", "no `mvn` to fetch them")])
def test_a_machine_without_java_or_maven_is_told_what_to_install(monkeypatch, tmp_path, missing, named):
    monkeypatch.setenv("SMSHOOKS_KAFKA_HOME", str(tmp_path))
    monkeypatch.setattr(broker.shutil, "which", lambda name: None if name == missing else f"/usr/bin/{name}")
    with pytest.raises(BrokerUnavailable) as raised:
        ensure_kafka()
    message = str(raised.value)
    assert named in message and "apt-get install openjdk-17-jre-headless maven" in message
    assert "\n" not in message
    assert not (tmp_path / "lib").exists()

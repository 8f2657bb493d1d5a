"""Ops fixtures: the receiver's client fixtures, and a parser for Prometheus text."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tests.receiver.conftest import client, make_client, published  # noqa: F401 - fixtures reused here


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value, 0 when absent."""
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def wait_until(condition, timeout: float, what: str):
    """Poll `condition` every 0.2 s until it returns something true (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")

"""IN lists of bounded size: one indexed query per chunk keeps statements and plans small on both databases."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
CHUNK = 500


def in_chunks(values: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """The values, sorted (stable plans, rows locked in one order), in lists of at most `size`."""
    ordered = sorted(values)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]

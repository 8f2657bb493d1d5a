"""A bounded load generator over loopback: threads with `requests`, every answer timed and kept."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests


@dataclass
class Answer:
    """One request's outcome: when it started and ended (monotonic), what came back."""

    index: int
    started: float
    ended: float
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


Request = Callable[[int], tuple[str, dict]]  # index -> (path, requests keyword arguments)


class Load:
    """`threads` workers posting `make(index)` until stopped, at most `limit` requests, optionally rate-paced."""

    def __init__(self, base: str, make: Request, threads: int = 8, limit: int = 100_000,
                 rate: float | None = None, timeout: float = 30.0):
        self.base, self.make, self.threads, self.limit = base, make, threads, limit
        self.rate, self.timeout = rate, timeout
        self.answers: list[Answer] = []
        self._counter = itertools.count()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._started = 0.0

    def start(self) -> Load:
        self._started = time.monotonic()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> list[Answer]:
        """Stop, wait for in-flight requests, return every answer in index order."""
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 5)
        return sorted(self.answers, key=lambda a: a.index)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            index = next(self._counter)
            if index >= self.limit:
                return
            if self.rate:
                delay = self._started + index / self.rate - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            path, kwargs = self.make(index)
            started = time.monotonic()
            try:
                response = session.post(self.base + path, timeout=self.timeout, **kwargs)
                answer = Answer(index, started, time.monotonic(), response.status_code, dict(response.headers),
                                _json(response))
            except requests.RequestException as error:
                answer = Answer(index, started, time.monotonic(), None, error=repr(error))
                session = requests.Session()
            with self._lock:
                self.answers.append(answer)


def _json(response: requests.Response) -> dict | None:
    """The JSON body, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None

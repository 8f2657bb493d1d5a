"""A durable spool at the edge: the records Kafka could not acknowledge in time, kept on local disk until forwarded.

One SQLite file per host in WAL mode with synchronous=FULL, so a committed append is on disk (the WAL is fsynced
at commit) before the receiver answers 200. Every gunicorn worker of the host appends to the same file; one
forwarder per host, elected by a file lock, drains it in arrival order, so order per key holds across workers.
A marker file exists while the spool holds entries: a request checks it with one stat and spools too, rather than
overtake older records of the same key.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

Record = tuple[str, bytes, list[tuple[str, bytes]], bytes]  # topic, key, headers, value
SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    headers TEXT NOT NULL,
    value BLOB NOT NULL,
    spooled_at REAL NOT NULL,
    attempted_at REAL  -- when a direct publish of it failed: it may have landed on Kafka all the same
)
"""


class SpoolUnavailable(RuntimeError):
    """The spool is full, holds entries older than its age limit, or cannot be written: the caller answers 503."""


@dataclass(frozen=True)
class SpooledRecord:
    """One spooled record and its place in arrival order."""

    seq: int
    record: Record
    spooled_at: float
    attempted_at: float | None = None  # set when Kafka may hold it already (its ack, not the record, was lost)


class Spool:
    """Append records durably, read them back in arrival order, remove them once Kafka acknowledged them."""

    def __init__(self, path: str | Path, max_bytes: int, max_age_seconds: float,
                 clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.marker = self.path.with_name(self.path.name + ".holds-entries")
        self.max_bytes, self.max_age_seconds, self.clock = max_bytes, max_age_seconds, clock
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared across threads or a fork)."""
        connection = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit: a 200 is durable
            connection.execute(SCHEMA)
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    def holds_entries(self) -> bool:
        """Whether anything waits to be forwarded (one stat: this runs on every request)."""
        return self.marker.exists()

    def accepting(self) -> bool:
        """Whether an append would be taken now (below the size limit, nothing older than the age limit)."""
        try:
            age = self.oldest_age() if self.holds_entries() else None
            return self.size_bytes() < self.max_bytes and (age is None or age <= self.max_age_seconds)
        except (sqlite3.Error, OSError):
            return False

    def size_bytes(self) -> int:
        """The spool's size on disk, its write-ahead log included."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def append(self, records: list[Record], attempted_at: float | None = None) -> None:
        """Store every record in one durable transaction, or raise SpoolUnavailable and store none. `attempted_at`:
        a direct publish of them was tried then and failed, so Kafka may hold some of them already."""
        try:
            connection = self._connection()
            if self.size_bytes() + sum(len(r[3]) + len(r[1]) for r in records) > self.max_bytes:
                raise SpoolUnavailable(f"the spool is full ({self.max_bytes} bytes)")
            connection.execute("BEGIN IMMEDIATE")
            try:
                age = self._oldest_age(connection)
                if age is not None and age > self.max_age_seconds:
                    raise SpoolUnavailable(f"the spool holds entries older than {self.max_age_seconds:.0f} s")
                now = self.clock()
                connection.executemany(
                    "INSERT INTO entries (topic, key, headers, value, spooled_at, attempted_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(topic, key, _headers_text(headers), value, now, attempted_at)
                     for topic, key, headers, value in records],
                )
                started = not self.marker.exists()
                self.marker.touch()  # before the commit: whoever sees the entry also sees the marker
                connection.execute("COMMIT")
            except BaseException:
                _rollback(connection)
                raise
        except sqlite3.Error as exc:  # disk full, read-only, corrupt: nothing was stored
            raise SpoolUnavailable(f"the spool cannot be written: {exc}") from exc
        except OSError as exc:
            raise SpoolUnavailable(f"the spool cannot be written: {exc}") from exc
        if started:
            log.warning("spooling: Kafka did not acknowledge in time; callbacks are kept in %s", self.path)

    def oldest(self, limit: int) -> list[SpooledRecord]:
        """The first `limit` entries in arrival order."""
        rows = self._connection().execute(
            "SELECT seq, topic, key, headers, value, spooled_at, attempted_at FROM entries ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [SpooledRecord(seq, (topic, bytes(key), _headers(headers), bytes(value)), at, attempted)
                for seq, topic, key, headers, value, at, attempted in rows]

    def remove(self, entries: list[SpooledRecord]) -> bool:
        """Remove forwarded entries; True when the spool is empty afterwards (the marker is gone too)."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany("DELETE FROM entries WHERE seq = ?", [(e.seq,) for e in entries])
            empty = connection.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None
            if empty:
                self.marker.unlink(missing_ok=True)  # under the write lock: no append can slip in between
            connection.execute("COMMIT")
        except BaseException:
            _rollback(connection)
            raise
        return empty

    def mark_attempted(self, entries: list[SpooledRecord], when: float) -> None:
        """Note that a send of these entries failed at `when`: Kafka may hold some of them (a partial failure)."""
        connection = self._connection()
        connection.executemany("UPDATE entries SET attempted_at = COALESCE(attempted_at, ?) WHERE seq = ?",
                               [(when, e.seq) for e in entries])

    def depth(self) -> int:
        """How many entries wait."""
        return self._connection().execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def oldest_age(self) -> float | None:
        """Seconds since the oldest waiting entry was spooled, or None when empty."""
        return self._oldest_age(self._connection())

    def _oldest_age(self, connection: sqlite3.Connection) -> float | None:
        row = connection.execute("SELECT spooled_at FROM entries ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else max(0.0, self.clock() - row[0])

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _rollback(connection: sqlite3.Connection) -> None:
    """Roll back what is open (SQLite already rolled back a commit that failed for a full disk)."""
    if connection.in_transaction:
        connection.execute("ROLLBACK")


def _headers_text(headers: list[tuple[str, bytes]]) -> str:
    """Headers as JSON text; CloudEvents header values are UTF-8 text, kept byte for byte via latin-1."""
    return json.dumps([[name, value.decode("latin-1")] for name, value in headers])


def _headers(text: str) -> list[tuple[str, bytes]]:
    return [(name, value.encode("latin-1")) for name, value in json.loads(text)]


class Forwarder:
    """Drains the spool to Kafka in arrival order; removes an entry only after its ack. One per host: the worker
    that holds the lock file forwards, the others stand by and take over if it dies."""

    def __init__(self, spool: Spool, send: Callable[[list[Record]], None], batch_size: int = 500,
                 idle_seconds: float = 0.5, on_kafka: Callable[[list[SpooledRecord]], set[int]] | None = None,
                 settle_seconds: float = 0.0, clock: Callable[[], float] = time.time):
        self.spool, self.send, self.clock = spool, send, clock
        # a record whose send failed may still land until its producer's delivery timeout is over: it is looked up
        # on Kafka (and forwarded if absent) only once that long has passed since the failure
        self.settle_seconds = settle_seconds
        # which of the entries whose direct publish failed Kafka holds all the same (by seq); none if not given
        self.on_kafka = on_kafka or (lambda entries: set())
        self.batch_size, self.idle_seconds = batch_size, idle_seconds
        self.stopping = threading.Event()
        self.forwarded = 0
        self._lock_file = None

    def _elected(self) -> bool:
        """Whether this process holds the host's forwarder lock (taken once, kept until exit)."""
        if self._lock_file is not None:
            return True
        lock_path = self.spool.path.with_name(self.spool.path.name + ".forwarder.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the life of the process
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    def forward_once(self) -> int:
        """Forward one batch; how many entries went (0 when empty, not elected, or Kafka still away)."""
        if not self.spool.holds_entries() or not self._elected():
            return 0
        entries = self.spool.oldest(self.batch_size)
        if not entries:
            self.spool.remove([])  # a stale marker: clear it
            return 0
        now = self.clock()
        unsettled = [i for i, e in enumerate(entries)
                     if e.attempted_at is not None and now - e.attempted_at < self.settle_seconds]
        if unsettled:
            entries = entries[:unsettled[0]]  # arrival order: nothing overtakes a record still settling
            if not entries:
                return 0
        uncertain = [e for e in entries if e.attempted_at is not None]
        try:
            landed = self.on_kafka(uncertain) if uncertain else set()
        except Exception as exc:  # noqa: BLE001 - Kafka still away; the entries stay and we try again
            log.debug("checking the spool against Kafka failed: %s", exc)
            return 0
        outgoing = [e for e in entries if e.seq not in landed]
        try:
            self.send([e.record for e in outgoing])
        except Exception as exc:  # noqa: BLE001 - Kafka still away; the entries stay and we try again
            # some may have been acked before the failure: the next pass looks them up instead of resending blindly
            self.spool.mark_attempted(outgoing, time.time())
            log.debug("forwarding the spool failed: %s", exc)
            return 0
        self.forwarded += len(entries)
        if self.spool.remove(entries):
            log.warning("spool drained: every spooled callback is on Kafka")
        return len(entries)

    def run(self) -> None:
        """Forward until stopped, resting while there is nothing to do or Kafka is away."""
        while not self.stopping.is_set():
            try:
                moved = self.forward_once()
            except Exception:  # noqa: BLE001 - a spool read failure must not kill the thread
                log.exception("spool forwarder failed; retrying")
                moved = 0
            if not moved:
                self.stopping.wait(self.idle_seconds)

    def start(self) -> threading.Thread:
        """Run in a daemon thread of this worker."""
        thread = threading.Thread(target=self.run, name="spool-forwarder", daemon=True)
        thread.start()
        return thread

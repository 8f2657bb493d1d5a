"""The edge spool on a real SQLite file: durable appends, arrival order, bounds, the marker, one forwarder a host."""

from __future__ import annotations

import sqlite3

import pytest

from receiver.spool import Forwarder, Spool, SpoolUnavailable


def record(n: int, key: str = "k") -> tuple:
    return ("sms.delivery-receipts", key.encode(), [("ce_id", f"id-{n}".encode()), ("x", b"\xff\x00")],
            f'{{"n":{n}}}'.encode())


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def spool(tmp_path, clock):
    return Spool(tmp_path / "spool.sqlite3", max_bytes=10_000_000, max_age_seconds=3600, clock=clock)


def test_appended_records_survive_a_new_process_view_in_arrival_order(spool, tmp_path):
    spool.append([record(1), record(2)])
    spool.append([record(3)])
    reopened = Spool(tmp_path / "spool.sqlite3", max_bytes=10_000_000, max_age_seconds=3600)
    assert [e.record for e in reopened.oldest(10)] == [record(1), record(2), record(3)]
    assert reopened.depth() == 3 and reopened.holds_entries()


def test_the_file_is_in_wal_mode_with_full_sync(spool, tmp_path):
    spool.append([record(1)])
    connection = sqlite3.connect(tmp_path / "spool.sqlite3")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert spool._connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_remove_clears_the_marker_only_when_empty(spool):
    spool.append([record(1), record(2)])
    first = spool.oldest(1)
    assert spool.remove(first) is False and spool.holds_entries()
    assert spool.remove(spool.oldest(10)) is True and not spool.holds_entries()
    assert spool.depth() == 0 and spool.oldest_age() is None


def test_a_full_spool_refuses_and_stores_nothing(tmp_path):
    small = Spool(tmp_path / "s.sqlite3", max_bytes=40_000, max_age_seconds=3600)
    depth_before_refusal = 0
    with pytest.raises(SpoolUnavailable, match="full"):
        for n in range(1000):
            depth_before_refusal = small.depth()
            small.append([record(n), ("t", b"k", [], b"x" * 8000)])
    assert 0 < small.depth() == depth_before_refusal  # the refused append left nothing behind


def test_entries_older_than_the_age_limit_stop_new_appends(spool, clock):
    spool.append([record(1)])
    clock.now += 3599
    spool.append([record(2)])
    clock.now += 2
    with pytest.raises(SpoolUnavailable, match="older than"):
        spool.append([record(3)])
    assert spool.depth() == 2  # nothing accepted is ever dropped for age
    assert spool.oldest_age() == pytest.approx(3601)


def test_an_unwritable_spool_is_unavailable(tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(SpoolUnavailable, match="cannot be written"):
        Spool(blocked / "spool.sqlite3", max_bytes=1_000_000, max_age_seconds=60).append([record(1)])


def test_forwarder_sends_in_order_and_removes_only_after_the_ack(spool):
    sent, fail = [], [True]

    def send(records):
        if fail[0]:
            raise RuntimeError("broker away")
        sent.extend(records)

    spool.append([record(n) for n in range(5)])
    forwarder = Forwarder(spool, send, batch_size=2)
    assert forwarder.forward_once() == 0 and spool.depth() == 5  # Kafka away: everything stays
    fail[0] = False
    while forwarder.forward_once():
        pass
    assert sent == [record(n) for n in range(5)]
    assert spool.depth() == 0 and not spool.holds_entries() and forwarder.forwarded == 5


def test_one_forwarder_per_host(spool):
    spool.append([record(1)])
    sent_a, sent_b = [], []
    first, second = Forwarder(spool, sent_a.extend), Forwarder(spool, sent_b.extend)
    assert first._elected()
    assert second.forward_once() == 0 and sent_b == []  # the lock is held: it stands by
    assert first.forward_once() == 1 and sent_a == [record(1)]


def test_entries_kafka_already_holds_are_removed_without_a_second_send(spool):
    """A direct publish whose ack was lost (the connection cut mid-request) may have landed: the forwarder asks
    Kafka about those entries only, and drops the ones it holds instead of writing them twice."""
    spool.append([record(1)])  # spooled behind others, never attempted
    spool.append([record(2), record(3)], attempted_at=999.0)
    asked, sent = [], []

    def on_kafka(entries):
        asked.extend(e.record for e in entries)
        return {e.seq for e in entries if e.record == record(2)}

    forwarder = Forwarder(spool, sent.extend, on_kafka=on_kafka)
    assert forwarder.forward_once() == 3
    assert asked == [record(2), record(3)]  # only the uncertain ones are looked up
    assert sent == [record(1), record(3)] and spool.depth() == 0
    assert [e.attempted_at for e in spool.oldest(10)] == []


def test_a_batch_whose_send_failed_is_looked_up_before_it_is_sent_again(spool):
    """A forward that failed part way (some records acked before the error) must not write those twice."""
    spool.append([record(1), record(2)])
    calls = {"sends": 0}

    def send(records):
        calls["sends"] += 1
        if calls["sends"] == 1:
            raise RuntimeError("acked record 1, then the connection broke")
        sent.extend(records)

    sent = []
    forwarder = Forwarder(spool, send, on_kafka=lambda entries: {e.seq for e in entries if e.record == record(1)})
    assert forwarder.forward_once() == 0
    assert all(e.attempted_at is not None for e in spool.oldest(10))
    assert forwarder.forward_once() == 2 and sent == [record(2)]


def test_a_record_whose_send_failed_waits_until_it_cannot_land_any_more(spool, clock):
    """Under load an ack can come after the spool deadline: the first send may still land while the record waits in
    the spool. It is looked up and forwarded only after the producers' delivery timeout, and nothing behind it
    overtakes it."""
    spool.append([record(1)], attempted_at=clock.now)
    spool.append([record(2)])
    sent = []
    forwarder = Forwarder(spool, sent.extend, settle_seconds=7, clock=clock, on_kafka=lambda entries: set())
    clock.now += 6
    assert forwarder.forward_once() == 0 and sent == [] and spool.depth() == 2
    clock.now += 2
    assert forwarder.forward_once() == 2 and sent == [record(1), record(2)]

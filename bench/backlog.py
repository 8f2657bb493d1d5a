"""Processors catching up: a backlog of mixed events on the topics, `smshooks process all` started, events per second
until every consumer group's lag is zero, beside the receiver's rate measured in the same run.

Starts a real broker and a fresh PostgreSQL database, creates the topics, publishes N events (default 200,000) straight
to them with a batching producer: sent messages, a delivery receipt for most of them (those of the last sends first
on their topic, so they are parked and matched when their send arrives), inbound messages (one in ten a STOP) and
link clicks. Then starts `smshooks process all` and polls each group's committed offsets against the topics' end
offsets every second until the lag is zero. The rate counts from the first committed offset (the process's start-up,
imports and group joins, is printed apart). Then, with the processors stopped, the receiver bench's own measurement
(bench/receiver.py: gunicorn with docker/gunicorn.conf.py, wrk, 32 connections) on the same broker gives the
receiver's rate; `--receiver-rate R` uses R instead and `--receiver-seconds 0` skips it.
Lines: `processors_backlog_rate=<events/s>` and `backlog_vs_receiver=<rate / receiver rate>`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition  # noqa: E402
from kafka.errors import KafkaError  # noqa: E402

from bench.databases import create_database, drop_database  # noqa: E402
from bench.receiver import tree_cpu_seconds  # noqa: E402
from core.events import (  # noqa: E402
    TOPIC_DELIVERY_RECEIPTS,
    TOPIC_INBOUND_MESSAGES,
    TOPIC_LINK_CLICKS,
    TOPIC_SENT_MESSAGES,
    DeliveryReceipt,
    Envelope,
    InboundMessage,
    LinkClick,
    SentMessage,
    topic_name,
)
from core.settings import load_settings  # noqa: E402
from core.topics import ensure_topics  # noqa: E402
from processors.db import upgrade  # noqa: E402
from smshooks.broker import LocalBroker, free_port  # noqa: E402

PG_ADMIN_URL = os.environ.get("SMSHOOKS_TEST_PG_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres")
PREFIX = "backlog."
# consumer group (without the prefix) -> the topic it reads, as in processors/registry.py
GROUPS = {
    "smshooks-sent-messages": TOPIC_SENT_MESSAGES,
    "smshooks-reconciliation": TOPIC_DELIVERY_RECEIPTS,
    "smshooks-opt-outs": TOPIC_INBOUND_MESSAGES,
    "smshooks-clicks": TOPIC_LINK_CLICKS,
}
NOW = datetime.now(UTC).replace(microsecond=0)
SENDER = "447700900001"
# a group that commits nothing this long while it has lag is stuck (seen: a member expelled and never rejoining)
STALL_SECONDS = 90
FINAL_SQL = "select count(*) from sent_messages where status in ('delivered', 'failed')"


def mix(total: int) -> dict[str, int]:
    """How many of each event: 45% sends, receipts for 90% of them, 10% inbound, the rest clicks."""
    sends = int(total * 0.45)
    receipts = int(sends * 0.9)
    inbound = int(total * 0.10)
    return {"sends": sends, "receipts": receipts, "inbound": inbound, "clicks": total - sends - receipts - inbound}


def events(counts: dict[str, int]):
    """(envelope) of every event, receipts of the last sends first on their topic so they arrive before them."""
    sends = counts["sends"]

    def sent(i: int) -> Envelope:
        return Envelope.wrap(SentMessage(
            vendor="generic", message_id=f"bl{i:09d}", recipient=f"+4477{i % 100_000_000:08d}", sender=SENDER,
            sent_at=NOW - timedelta(hours=2), received_at=NOW - timedelta(hours=2), campaign_id=f"c{i % 20}",
            country_iso2="GB"))

    def receipt(i: int) -> Envelope:
        status = "failed" if i % 17 == 0 else "delivered"
        return Envelope.wrap(DeliveryReceipt(
            vendor="generic", message_id=f"bl{i:09d}", status=status,
            vendor_status="UNDELIV" if status == "failed" else "DELIVRD", received_at=NOW - timedelta(hours=1),
            occurred_at=NOW - timedelta(hours=1), recipient=f"+4477{i % 100_000_000:08d}"))

    for i in range(sends):
        yield sent(i)
    # receipts of the last 5% of the sends come first: parked by reconciliation, matched when the send arrives
    early = range(max(0, sends - max(1, counts["receipts"] // 20)), sends)
    yield from (receipt(i) for i in early)
    yield from (receipt(i) for i in range(counts["receipts"] - len(early)))
    for i in range(counts["inbound"]):
        text = "STOP" if i % 10 == 0 else f"thanks, see you at {i % 12 + 1}pm"
        yield Envelope.wrap(InboundMessage(
            vendor="generic", message_id=f"mo{i:09d}", from_=f"+4477{(i * 7) % sends:08d}", to=SENDER, text=text,
            received_at=NOW - timedelta(minutes=30), occurred_at=NOW - timedelta(minutes=30)))
    for i in range(counts["clicks"]):
        target = (i * 13) % sends
        yield Envelope.wrap(LinkClick(
            vendor="generic", message_id=f"bl{target:09d}", recipient=f"+4477{target % 100_000_000:08d}",
            url=f"https://example.com/offer/{i % 50}", received_at=NOW - timedelta(minutes=20),
            clicked_at=NOW - timedelta(minutes=20), ip_address="203.0.113.7"))


def publish(bootstrap: str, counts: dict[str, int]) -> float:
    """Publish the backlog with a batching producer and wait for every ack; returns seconds."""
    started = time.perf_counter()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 500_000, "acks": "all"})
    failures = []
    for sent, envelope in enumerate(events(counts), 1):
        while True:
            try:
                producer.produce(topic_name(PREFIX, envelope.topic), envelope.value(), envelope.key.encode(),
                                 headers=envelope.headers(), on_delivery=lambda e, _m: e and failures.append(e))
                break
            except BufferError:
                producer.poll(0.1)
        if sent % 20_000 == 0:
            producer.poll(0)
            print(f"  published {sent}", flush=True)
    producer.flush(120)
    if failures or len(producer):
        raise RuntimeError(f"publish failed: {failures[:3]}, {len(producer)} undelivered")
    return time.perf_counter() - started


def lags(admin: KafkaAdminClient, consumer: KafkaConsumer, ends: dict[str, dict]) -> dict[str, tuple[int, int]]:
    """Per group: (events committed, events still to process)."""
    result = {}
    try:
        offsets = admin.list_group_offsets([PREFIX + group for group in GROUPS])  # one OffsetFetch for all four
    except KafkaError:  # the offsets topic and group coordinators appear with the first group: nothing done yet
        offsets = {}
    for group, topic in GROUPS.items():
        committed = offsets.get(PREFIX + group) or {}
        done = sum(committed[tp].offset for tp in ends[topic] if tp in committed and committed[tp].offset >= 0)
        result[group] = (done, sum(ends[topic].values()) - done)
    return result


def drain(bootstrap: str, env: dict[str, str], log_path: Path, timeout: float, arguments: list[str]) -> dict:
    """Start `smshooks process all`, poll the lag every second until it is zero; timings per group."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="backlog-bench")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="backlog-bench-ends")
    ends = {}
    for topic in GROUPS.values():
        name = topic_name(PREFIX, topic)
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name)]
        ends[topic] = consumer.end_offsets(partitions)
    total = sum(sum(e.values()) for e in ends.values())
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    started = time.monotonic()
    child = subprocess.Popen([str(Path(sys.executable).parent / "smshooks"), "process", "all", *arguments], env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    postgres_before = postgres_cpu_seconds()
    first = None
    finished: dict[str, float] = {}
    progress: dict[str, tuple[int, float]] = {}  # per group: events committed, when that number last changed
    last_print = 0.0
    try:
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"smshooks process all exited with {child.returncode}; see {log_path}")
            state = lags(admin, consumer, ends)
            now = time.monotonic()
            done = sum(d for d, _ in state.values())
            if first is None and done:
                first = now
            for group, (_, lag) in state.items():
                if lag == 0 and group not in finished:
                    finished[group] = now
            if now - last_print >= 5 or len(finished) == len(GROUPS):
                last_print = now
                rate = done / (now - first) if first and now > first else 0
                print(f"  {now - started:6.1f} s  processed {done}/{total}  ({rate:.0f}/s since the first commit)  "
                      + "  ".join(f"{g.removeprefix('smshooks-')} lag {lag}" for g, (_, lag) in state.items()),
                      flush=True)
            if len(finished) == len(GROUPS):
                break
            for group, (done_by_group, _) in state.items():
                if done_by_group != progress.get(group, (None,))[0]:
                    progress[group] = (done_by_group, now)
            stalled = [g for g, (_, lag) in state.items() if lag and now - progress[g][1] > STALL_SECONDS]
            if stalled:
                raise RuntimeError(f"no offset committed by {', '.join(stalled)} for {STALL_SECONDS} s while lag "
                                   f"remains (see {log_path})")
            if now - started > timeout:
                raise RuntimeError(f"lag not zero after {timeout:.0f} s")
            time.sleep(1)
        cpu = tree_cpu_seconds(child.pid), postgres_cpu_seconds() - postgres_before
        batches = batch_times(int(env["SMSHOOKS_METRICS_PORT"]))
    finally:
        os.killpg(child.pid, 15)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, 9)
        log.close()
        admin.close()
        consumer.close()
    per_group = {g: (sum(ends[t].values()), finished[g] - first) for g, t in GROUPS.items()}
    return {"total": total, "startup": first - started, "seconds": max(finished.values()) - first,
            "per_group": per_group, "cpu": cpu, "batches": batches}


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by every PostgreSQL process on the machine (other sessions' too)."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def batch_times(port: int) -> dict[str, tuple[float, float]]:
    """Per processor, from its /metrics: (batches, seconds spent in them: decode, handle, commit, settle)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        for suffix, index in (("_count", 0), ("_sum", 1)):
            prefix = f"smshooks_processor_batch_duration_seconds{suffix}{{processor=\""
            if line.startswith(prefix):
                name, value = line[len(prefix):].split('"}')
                found.setdefault(name, [0.0, 0.0])[index] = float(value)
    return {name: (count, seconds) for name, (count, seconds) in found.items()}


def receiver_rate(broker: LocalBroker, work: Path, seconds: int) -> float:
    """bench/receiver.py's measurement of the receiver alone (warm-up 3 s, then one load of `seconds`)."""
    from bench import receiver

    config = work / "receiver.toml"
    config.write_text(
        'rate_limit_per_vendor = "1000000/second"\nrate_limit_per_source = "1000000/second"\nlog_level = "WARNING"\n'
        f'[vendors.generic]\nauth = [{{ scheme = "standard_webhooks", secret = "whsec_{receiver.SECRET}", '
        'tolerance_seconds = 86400 }]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSHOOKS_", "PROMETHEUS_"))}
    env.update({"SMSHOOKS_CONFIG": str(config), "SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "SMSHOOKS_DATA_DIR": str(work), "SMSHOOKS_TOPIC_PREFIX": "receiver."})
    script = receiver.wrk_script(receiver.signed_headers(), work / "post.lua")
    port = free_port()
    server = receiver.serve("app:app", port, env, None, None)
    try:
        receiver.load(port, script, 3, 32)
        result = receiver.measure("receiver", port, server.pid, broker.process.pid, script, seconds, 32)
    finally:
        server.terminate()
        server.wait(timeout=15)
    if result["errors"]:
        raise RuntimeError(f"receiver answered {result['errors']} non-2xx")
    return result["rps"]


def row_counts(url: str) -> str:
    """What the processors wrote, as a check that the backlog really went through."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            def count(sql: str) -> int:
                return connection.execute(sqlalchemy.text(sql)).scalar()

            return (f"sent_messages {count('select count(*) from sent_messages')}, "
                    f"with a final status {count(FINAL_SQL)}, receipts {count('select count(*) from receipts')} "
                    f"(still parked {count('select count(*) from receipts where parked')}), "
                    f"opt-out history {count('select count(*) from opt_out_history')}, "
                    f"clicks {count('select count(*) from clicks')}")
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="backlog size (default 200,000)")
    parser.add_argument("--receiver-rate", type=float, default=None,
                        help="the receiver's req/s from elsewhere, instead of measuring it in this run")
    parser.add_argument("--receiver-seconds", type=int, default=10, help="receiver load duration (0: skip)")
    parser.add_argument("--processor-env", action="append", default=[], metavar="SMSHOOKS_X=V",
                        help="an extra setting for `smshooks process all` (A/B of a setting; repeatable)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up when the lag is not zero by then")
    parser.add_argument("--process-arguments", default="", metavar="ARGS",
                        help="more arguments for `smshooks process all`, e.g. '--instances sent-messages=2'")
    args = parser.parse_args()
    counts = mix(args.events)
    work = Path(tempfile.mkdtemp(prefix="smshooks-backlog-"))
    database_url = create_database(PG_ADMIN_URL)
    broker = LocalBroker(free_port(), heap="512m", quick_start=False).start(work / "kafka.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSHOOKS_", "PROMETHEUS_"))}
    env.update({"SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "SMSHOOKS_DATABASE_URL": database_url,
                "SMSHOOKS_TOPIC_PREFIX": PREFIX, "SMSHOOKS_LOG_LEVEL": "WARNING", "SMSHOOKS_DATA_DIR": str(work),
                "SMSHOOKS_METRICS_PORT": str(free_port())})
    env.update(item.split("=", 1) for item in args.processor_env)
    try:
        upgrade(database_url)
        settings = load_settings(env)
        ensure_topics(settings, GROUPS.values())
        print(f"publishing {sum(counts.values())} events ({', '.join(f'{v} {k}' for k, v in counts.items())}) to "
              f"{settings.topic_partitions} partitions per topic ...", flush=True)
        print(f"published in {publish(broker.bootstrap_servers, counts):.1f} s", flush=True)
        print(f"starting smshooks process all {args.process_arguments} ...", flush=True)
        result = drain(broker.bootstrap_servers, env, work / "processors.log", args.timeout,
                       args.process_arguments.split())
        print(f"in the database: {row_counts(database_url)}")
        rate = result["total"] / result["seconds"]
        print(f"start-up (process start to first committed offset) {result['startup']:.1f} s; backlog of "
              f"{result['total']} drained in {result['seconds']:.1f} s after it")
        for group, (events_count, seconds) in result["per_group"].items():
            rate_text = f"{events_count / seconds:.0f}/s" if seconds > 0 else "done by the first commit seen"
            print(f"  {group:24} {events_count:7} events, lag zero after {seconds:6.1f} s ({rate_text}, sharing the "
                  "process)")
        processors_cpu, postgres_cpu = result["cpu"]
        print(f"CPU per event: processors {processors_cpu / result['total'] * 1e6:.0f} us, all PostgreSQL "
              f"processes {postgres_cpu / result['total'] * 1e6:.0f} us (machine-wide: other sessions' too); "
              f"processors used {processors_cpu / (result['startup'] + result['seconds']):.2f} cores on average")
        for processor, (count, seconds) in sorted(result["batches"].items()):
            print(f"  {processor:15} {count:5.0f} batches, {seconds:6.1f} s in them "
                  f"({seconds / max(count, 1) * 1000:.0f} ms per batch)")
        receiver_rps = args.receiver_rate
        if receiver_rps is None and args.receiver_seconds > 0:
            print("receiver (processors stopped, same broker):", flush=True)
            receiver_rps = receiver_rate(broker, work, args.receiver_seconds)
    finally:
        broker.stop()
        drop_database(PG_ADMIN_URL, database_url)
    print(f"processors_backlog_rate={rate:.0f}")
    if receiver_rps:
        print(f"backlog_vs_receiver={rate / receiver_rps:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

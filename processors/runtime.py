"""The one consumer loop every processor runs: decode, dedupe, handle, commit DB, commit offsets, relay."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, StatementError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core.events import Envelope, InvalidEvent, topic_name, utc_now
from core.settings import Settings
from processors import observability
from processors.clients import KafkaClients
from processors.db.chunks import among, in_chunks
from processors.db.engine import make_engine, make_session_factory
from processors.db.models import ProcessedEvent
from processors.db.uow import CanonicalId, UnitOfWork
from processors.relay import relay_all
from processors.topics import dead_letter_topic

log = logging.getLogger(__name__)

Handler = Callable[[Envelope, UnitOfWork], None]
# Loads, in a few queries, what a batch's handlers will look up one event at a time (into the unit's caches).
Prefetch = Callable[[list[Envelope], UnitOfWork], None]
# Runs after a batch committed, in a transaction of its own: finishes what a concurrent commit hid from it.
Settle = Callable[[list[Envelope], UnitOfWork], int]

# An outage: the database or the broker is down or slow. Retried with backoff for as long as it lasts, never
# dead-lettered (the event is fine; the world is not).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    KafkaError,
    TimeoutError,
    ConnectionError,
)
# A race that a retry resolves, or a bad event that no retry will: IntegrityError because two members briefly
# owning one partition both insert the same processed event id (the retry finds it processed and skips it), but
# also a record that breaks a constraint; StaleDataError: another processor claimed a parked receipt this batch
# matched (UnitOfWork.claim_parked) since the batch read it. Retried a few times, then the batch is isolated (see
# _process).
CONFLICT_ERRORS: tuple[type[BaseException], ...] = (IntegrityError, StaleDataError)
# an offset commit the group refuses because it no longer counts us as the member owning those partitions
GROUP_LOST_ERRORS: tuple[type[BaseException], ...] = (
    CommitFailedError, IllegalGenerationError, RebalanceInProgressError, UnknownMemberIdError,
)
TRANSIENT_ERRORS = OUTAGE_ERRORS + CONFLICT_ERRORS
# refused offset commits in a row after which the consumer is replaced: a rebalance refuses one or two
REJOIN_AFTER_REFUSALS = 3

# A batch that failed with a conflict this many times in a row is retried one event at a time.
BATCH_ATTEMPTS = 3
# An event that fails alone this many times goes to the DLQ (with the reason in its headers); the others proceed.
EVENT_ATTEMPTS = 3
# While a failure lasts, one log line at its start, one per this many seconds with a count, one at the recovery.
FAILURE_LOG_INTERVAL_SECONDS = 60.0


SETTLE_ATTEMPTS = 3
# Handled events whose settle met a database outage, kept for the loop to settle once the database is back. Only
# batches that committed just before an outage are kept (none commit during one), so a few batches at most; past
# this many, further ones are left to the periodic sweep (and a restart sweeps at once).
UNSETTLED_LIMIT = 10_000
# Bound on a consumer call that waits on the group coordinator (commit, committed offsets). kafka-python waits
# without limit by default, and after a rebalance such a call can block the loop with nothing logged.
KAFKA_CALL_TIMEOUT_MS = 15_000


def _position(record) -> tuple[str, int, int]:
    """Where a record sits: (topic, partition, offset)."""
    return record.topic, record.partition, record.offset


def is_outage(error: BaseException) -> bool:
    """True when the database or the broker is away: retry for as long as it takes, never dead-letter."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OUTAGE_ERRORS)


def is_transient(error: BaseException) -> bool:
    """True for failures worth retrying as they are (an outage, or a conflict a retry may resolve)."""
    return is_outage(error) or isinstance(error, CONFLICT_ERRORS)


def failure_reason(error: BaseException) -> str:
    """One line naming a failure, for logs and dlq_reason: the database's own message without the statement, its
    parameters or PostgreSQL's DETAIL line (which would carry the row's phone numbers)."""
    cause = error.orig if isinstance(error, StatementError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


@dataclass(frozen=True)
class Processor:
    """A named consumer group: the topics it reads and the handler for each event type."""

    name: str
    topics: tuple[str, ...]
    routes: Mapping[str, Handler]
    outputs: tuple[str, ...] = ()
    prefetch: Prefetch | None = None
    # housekeeping run in its own transaction every `sweep_interval_seconds` (e.g. the parked-receipt sweep)
    periodic: Callable[[UnitOfWork], int] | None = None
    # run on each batch's handled events right after its commit (e.g. re-matching receipts parked meanwhile)
    settle: Settle | None = None

    def group_id(self, settings: Settings) -> str:
        """`smshooks-<name>`, under the topic prefix so that prefixed deployments never share groups."""
        return f"{settings.topic_prefix}smshooks-{self.name}"

    def input_topics(self, settings: Settings) -> list[str]:
        """Broker-side names of the topics this processor consumes."""
        return [topic_name(settings.topic_prefix, topic) for topic in self.topics]


@dataclass
class Stats:
    """Counters of one processor's run, for logs, metrics and tests."""

    batches: int = 0
    handled: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    retries: int = 0
    relayed: int = 0
    settled: int = 0  # rows the post-commit re-checks matched
    swept: int = 0  # rows the fallback sweep matched
    errors: list[str] = field(default_factory=list)


class Backoff:
    """Bounded exponential backoff that wakes up early when the stop flag is set."""

    def __init__(self, initial: float = 0.2, maximum: float = 10.0) -> None:
        self.initial, self.maximum, self.delay = initial, maximum, initial

    def wait(self, stop_flag: threading.Event) -> None:
        """Sleep the current delay (or until stopped), then double it up to the maximum."""
        stop_flag.wait(self.delay)
        self.delay = min(self.delay * 2, self.maximum)

    def reset(self) -> None:
        """Back to the initial delay after a success."""
        self.delay = self.initial


class ProcessorLoop:
    """One processor's consumer, producer and database, driven until the stop flag is set."""

    def __init__(
        self,
        processor: Processor,
        settings: Settings,
        stop_flag: threading.Event,
        session_factory: sessionmaker[Session],
        *,
        clients: KafkaClients,
        canonical_id: CanonicalId,
    ) -> None:
        self.processor = processor
        self.settings = settings
        self.stop_flag = stop_flag
        self.session_factory = session_factory
        self.clients = clients
        self.canonical_id = canonical_id
        self.refused_commits = 0  # offset commits the group refused in a row (see _commit_offsets)
        self.group = processor.group_id(settings)
        self.stats = Stats()
        self.backoff = Backoff()
        self.consumer: KafkaConsumer | None = None
        self.producer: KafkaProducer | None = None
        self.unsettled: list[Envelope] = []
        # failed attempts of each record (topic, partition, offset) of batches that failed with a conflict
        self.batch_failures: dict[tuple[str, int, int], int] = {}
        # records (topic, partition, offset) dead-lettered whose offsets are not committed yet (see _process)
        self.dead_lettered: set[tuple[str, int, int]] = set()
        self.failures = 0  # consecutive failed steps of the current streak (0: all is well)
        self.failing_since = self.failure_logged = 0.0

    def run(self) -> Stats:
        """Consume until stopped; each batch is applied and committed before its offsets."""
        if not self._connect():
            return self.stats
        needs_rewind = False
        last_relay = 0.0
        # the first pass sweeps at once: a settle a previous run could not finish (crash during an outage) is
        # caught at start, not a sweep interval later
        last_periodic = float("-inf")
        try:
            while not self.stop_flag.is_set():
                if needs_rewind:
                    if not self._try(self._rewind, ends_streak=False):
                        continue
                    needs_rewind = False
                # a poll or a rewind succeeding does not end a failing streak: only the step that failed does, or
                # the backoff would restart at its shortest delay before every retry of a failing batch
                polled = self._try(
                    lambda: self.consumer.poll(timeout_ms=self.settings.consumer_poll_timeout_ms),
                    ends_streak=False,
                )
                if polled is False:
                    continue
                records = [record for batch in (polled or {}).values() for record in batch]
                if records and not self._try(lambda records=records: self._process(records)):
                    needs_rewind = True
                    continue
                if self.unsettled and self._try(lambda: self._settle(self.unsettled)):
                    log.info("%s: settled %d events a database outage had interrupted", self.group,
                             len(self.unsettled))
                    self.unsettled = []
                due = time.monotonic() - last_periodic > self.settings.sweep_interval_seconds
                if self.processor.periodic and due and self._try(self._periodic):
                    last_periodic = time.monotonic()  # a failed sweep (database away) runs again next turn
                if records or time.monotonic() - last_relay > 1.0:
                    self._try(self._relay)
                    last_relay = time.monotonic()
                self._refresh_metrics()
            self._try(self._relay)
        finally:
            self._close()
        return self.stats

    def _refresh_metrics(self) -> None:
        """Lag and database gauges (throttled inside); a metrics failure never stops processing."""
        try:
            observability.refresh(self.processor.name, self.consumer, self.session_factory, self.settings, self.stats)
        except Exception:  # noqa: BLE001
            log.debug("%s: metrics refresh failed", self.group, exc_info=True)

    def _connect(self) -> bool:
        """Create topics, then the consumer and producer, retrying while the broker is unreachable."""
        inputs = self.processor.input_topics(self.settings)
        topics = inputs + [dead_letter_topic(t) for t in inputs]
        topics += [topic_name(self.settings.topic_prefix, t) for t in self.processor.outputs]
        while not self.stop_flag.is_set():
            try:
                self.clients.create_topics(topics)
                self.producer = self.clients.producer()
                self.consumer = self.clients.consumer(self.processor)
                return True
            except KafkaError as error:
                log.warning("%s: broker not ready (%s), retrying", self.group, error)
                self._close()  # a producer built before the consumer failed is not kept for the next attempt
                self.producer = self.consumer = None
                self.backoff.wait(self.stop_flag)
        return False  # stopped before we ever connected

    def _try(self, step: Callable[[], object], ends_streak: bool = True) -> object:
        """Run a step; on a transient failure log (once per streak), back off and return False (the caller
        retries)."""
        try:
            result = step()
        except Exception as error:
            if not is_transient(error):
                raise
            self.stats.retries += 1
            self._log_failure(error)
            self.backoff.wait(self.stop_flag)
            return False
        if ends_streak:
            self._log_recovery()
            self.backoff.reset()
        return True if result is None else result

    def _log_failure(self, error: BaseException) -> None:
        """A warning at the first failure of a streak and once a minute while it lasts, with a count."""
        now = time.monotonic()
        self.failures += 1
        if self.failures == 1:
            self.failing_since = self.failure_logged = now
            log.warning("%s: transient failure, backing off %.1fs: %s", self.group, self.backoff.delay,
                        failure_reason(error))
        elif now - self.failure_logged >= FAILURE_LOG_INTERVAL_SECONDS:
            self.failure_logged = now
            log.warning("%s: still failing: %d transient failures in %.0fs, backing off %.1fs: %s", self.group,
                        self.failures, now - self.failing_since, self.backoff.delay, failure_reason(error))

    def _log_recovery(self) -> None:
        """One line when a failing streak ends."""
        if self.failures:
            log.info("%s: recovered after %d transient failures in %.1fs", self.group, self.failures,
                     time.monotonic() - self.failing_since)
            self.failures = 0

    def _process(self, records: list) -> None:
        """Apply a polled batch: decode, handle in one transaction, DLQ the bad ones, commit offsets."""
        started = time.perf_counter()
        self.stats.batches += 1
        decoded: list[tuple[object, Envelope]] = []
        dead: list[tuple[object, str]] = []
        for record in records:
            try:
                decoded.append(
                    (record, Envelope.decode(record.topic, record.key, record.headers, record.value))
                )
            except InvalidEvent as error:
                dead.append((record, f"invalid_event: {error}"))
            except Exception as error:  # noqa: BLE001 - any decoding crash means the record is unusable
                dead.append((record, f"undecodable: {type(error).__name__}: {error}"))
        try:
            handled = self._apply(decoded)
        except Exception as error:
            if is_outage(error) or self._retry_whole(records, error):
                raise
            # One bad event must not stall its partition: retry event by event, DLQ the culprit.
            log.warning("%s: a batch of %d events failed (%s); isolating the failing event", self.group,
                        len(decoded), failure_reason(error), exc_info=not isinstance(error, DBAPIError))
            failed, handled = self._apply_one_by_one(decoded)
            dead.extend(failed)
        # The batch is durable either way; a settle that still fails (the database is away) is kept for the loop
        if handled and self.processor.settle is not None and not self._settled(handled):
            self._defer_settle(handled)
        # A batch read again because its offset commit was refused (a rebalance) must not dead-letter its bad
        # records a second time: DLQ readers and `smshooks replay dlq` would see each twice.
        self._dead_letter([(record, reason) for record, reason in dead if _position(record) not in self.dead_lettered])
        if len(self.dead_lettered) > 100_000:  # records of batches never committed here (a rebalance took them)
            self.dead_lettered.clear()
        self.dead_lettered.update(_position(record) for record, _ in dead)
        self._commit_offsets(records)
        for record in records:
            self.batch_failures.pop(_position(record), None)
            self.dead_lettered.discard(_position(record))
        observability.record_batch(self.processor.name, self.stats, records, time.perf_counter() - started)

    def _apply(self, decoded: list[tuple[object, Envelope]]) -> list[Envelope]:
        """Dedupe and handle every event of the batch in one unit of work, commit it; returns the handled ones."""
        with UnitOfWork(self.session_factory, self.settings, self.canonical_id) as uow:
            seen = self._already_processed(uow.session, [envelope.id for _, envelope in decoded])
            to_handle: list[tuple[object, Envelope, Handler]] = []
            duplicates = skipped = 0
            for record, envelope in decoded:
                handler = self.processor.routes.get(envelope.type)
                if handler is None:
                    skipped += 1  # another event type sharing the topic; not ours to handle
                    continue
                if envelope.id in seen:
                    duplicates += 1  # a vendor retry or a replay after a crash
                    continue
                seen.add(envelope.id)
                to_handle.append((record, envelope, handler))
            if to_handle and self.processor.prefetch is not None:
                self.processor.prefetch([envelope for _, envelope, _ in to_handle], uow)
            for record, envelope, handler in to_handle:
                handler(envelope, uow)
                uow.insert_later(self._processed_row(record, envelope), ProcessedEvent)
            uow.commit()
        self.stats.handled += len(to_handle)
        self.stats.duplicates += duplicates
        self.stats.skipped += skipped
        return [envelope for _, envelope, _ in to_handle]

    def _retry_whole(self, records: list, error: BaseException) -> bool:
        """Whether a batch that failed with a conflict is retried as a whole (a race the retry resolves) rather
        than isolated: until its records have failed BATCH_ATTEMPTS times. Any other failure is isolated at once."""
        if not isinstance(error, CONFLICT_ERRORS):
            return False
        keys = [_position(record) for record in records]
        attempts = 1 + max(self.batch_failures.get(key, 0) for key in keys)
        if attempts >= BATCH_ATTEMPTS:
            return False
        if len(self.batch_failures) > 100_000:  # records of batches never retried (a rebalance took them)
            self.batch_failures.clear()
        self.batch_failures.update(dict.fromkeys(keys, attempts))
        return True

    def _apply_one_by_one(
        self, decoded: list[tuple[object, Envelope]]
    ) -> tuple[list[tuple[object, str]], list[Envelope]]:
        """Apply each event in its own unit of work, up to EVENT_ATTEMPTS times; return the ones that failed every
        time (for the DLQ) and the handled ones. An outage stops the batch: it is retried whole later."""
        failed, handled = [], []
        for record, envelope in decoded:
            for attempt in range(1, EVENT_ATTEMPTS + 1):
                try:
                    handled.extend(self._apply([(record, envelope)]))
                    break
                except Exception as error:
                    if is_outage(error):
                        raise
                    if attempt == EVENT_ATTEMPTS:
                        reason = failure_reason(error)
                        failed.append((record, f"handler_error after {attempt} attempts: {reason}"))
                        self.stats.errors.append(f"{envelope.id}: {reason}")
        return failed, handled

    def _already_processed(self, session: Session, event_ids: list[str]) -> set[str]:
        """Which of these ids this group already applied (one indexed query per 500 ids)."""
        found: set[str] = set()
        for chunk in in_chunks(event_ids):
            found.update(
                session.scalars(
                    select(ProcessedEvent.event_id).where(
                        ProcessedEvent.consumer_group == self.group, among(session, ProcessedEvent.event_id, chunk)
                    )
                )
            )
        return found

    def _processed_row(self, record, envelope: Envelope) -> dict:
        """The processed_events row that makes a replay of this event a no-op."""
        return {
            "consumer_group": self.group,
            "event_id": envelope.id,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "processed_at": utc_now(),
        }

    def _dead_letter(self, dead: list[tuple[object, str]]) -> None:
        """Copy bad records to `<topic>.dlq` with the reason and origin in headers; wait for the acks."""
        if not dead:
            return
        assert self.producer is not None
        futures = []
        for record, reason in dead:
            headers = list(record.headers or []) + [
                ("dlq_reason", reason[:1000].encode()),
                ("dlq_original_topic", record.topic.encode()),
                ("dlq_original_partition", str(record.partition).encode()),
                ("dlq_original_offset", str(record.offset).encode()),
                ("dlq_consumer_group", self.group.encode()),
            ]
            log.warning(
                "%s: dead-lettering %s/%s@%s: %s",
                self.group,
                record.topic,
                record.partition,
                record.offset,
                reason,
            )
            futures.append(
                self.producer.send(
                    dead_letter_topic(record.topic), key=record.key, value=record.value, headers=headers
                )
            )
        self.producer.flush(timeout=10)
        for future in futures:
            future.get(timeout=10)
        self.stats.dead_lettered += len(dead)

    def _commit_offsets(self, records: list) -> None:
        """Commit the next offset of every partition in the batch, only after the work is durable."""
        assert self.consumer is not None
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            offsets[partition] = max(offsets.get(partition, -1), record.offset + 1)
        try:
            self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()},
                                 timeout_ms=KAFKA_CALL_TIMEOUT_MS)
        except GROUP_LOST_ERRORS:
            # The group moved on without us. Usually a rebalance the next poll completes (the step fails, the loop
            # backs off, rewinds and polls). But with kafka-python 3.0 a consumer whose membership expired while a
            # slow batch ran kept having this commit refused and never rejoined (the group stayed Empty, its lag
            # frozen): after REJOIN_AFTER_REFUSALS refusals in a row a new consumer joins afresh from the committed
            # offsets, and the batch it reads again is deduplicated by event id.
            self.refused_commits += 1
            if self.refused_commits >= REJOIN_AFTER_REFUSALS:
                self._replace_consumer()
            raise
        self.refused_commits = 0

    def _replace_consumer(self) -> None:
        """Leave the group with the old consumer and join it again with a new one from the clients' maker."""
        # the new one first: if the broker is away, building it raises and the old one stays for the next attempt
        replacement = self.clients.consumer(self.processor)
        old, self.consumer = self.consumer, replacement
        if old is not None:
            try:
                old.close(autocommit=False)
            except Exception:  # noqa: BLE001 - a consumer the group dropped may fail to leave it; it is gone anyway
                log.warning("%s: closing the consumer the group dropped failed", self.group, exc_info=True)
        self.refused_commits = 0
        log.warning("%s: the group refused our offset commits; joined it again with a new consumer", self.group)

    def _rewind(self) -> None:
        """After a failed batch, go back to the last committed offsets so nothing is skipped."""
        assert self.consumer is not None
        for partition in self.consumer.assignment():
            committed = self.consumer.committed(partition, timeout_ms=KAFKA_CALL_TIMEOUT_MS)
            if committed is None:
                self.consumer.seek_to_beginning(partition)
            else:
                self.consumer.seek(partition, committed)

    def _settle(self, handled: list[Envelope]) -> None:
        """The processor's post-commit step for a batch, in a transaction of its own."""
        assert self.processor.settle is not None
        with UnitOfWork(self.session_factory, self.settings, self.canonical_id) as uow:
            done = self.processor.settle(handled, uow)
            uow.commit()
        if done:
            self.stats.settled += done
            log.info("%s: settled %d rows a concurrent commit had hidden", self.group, done)

    def _settled(self, handled: list[Envelope]) -> bool:
        """Run the settle, again when it fails: one that met the other processor's settle on the same row
        (StaleDataError) was rolled back with rows only it could see. Whether it succeeded."""
        return any(self._try(lambda: self._settle(handled)) for _ in range(SETTLE_ATTEMPTS))

    def _defer_settle(self, handled: list[Envelope]) -> None:
        """Keep the events of a settle that met a database outage for the loop to settle later: left to the
        sweep alone, a receipt parked in the same instant as its sent message would wait minutes."""
        room = UNSETTLED_LIMIT - len(self.unsettled)
        if room < len(handled):
            log.warning("%s: %d events wait for a settle already; %d more are left to the periodic sweep",
                        self.group, len(self.unsettled), len(handled) - max(room, 0))
        self.unsettled.extend(handled[: max(room, 0)])

    def _periodic(self) -> None:
        """The processor's housekeeping, in one transaction of its own; its output events go through the outbox."""
        assert self.processor.periodic is not None
        with UnitOfWork(self.session_factory, self.settings, self.canonical_id) as uow:
            done = self.processor.periodic(uow)
            uow.commit()
        if done:
            self.stats.swept += done
            log.info("%s: periodic housekeeping applied %d rows", self.group, done)

    def _relay(self) -> None:
        """Publish whatever the outbox holds."""
        assert self.producer is not None
        self.stats.relayed += relay_all(self.session_factory, self.producer)

    def _close(self) -> None:
        """Leave the group and flush the producer."""
        if self.consumer is not None:
            try:
                self.consumer.close(autocommit=False)
            except Exception:  # noqa: BLE001 - closing a broken connection must not hide the real error
                log.warning("%s: consumer close failed", self.group, exc_info=True)
        if self.producer is not None:
            try:
                self.producer.close(timeout=5)
            except Exception:  # noqa: BLE001
                log.warning("%s: producer close failed", self.group, exc_info=True)


def run(
    processor: Processor,
    settings: Settings,
    stop_flag: threading.Event,
    *,
    clients: KafkaClients,
    canonical_id: CanonicalId,
    engine: Engine | None = None,
) -> Stats:
    """Run one processor until `stop_flag` is set, finishing and committing the current batch; returns stats.

    The database must be migrated first (`processors.db.upgrade`). Signal handling is the caller's:
    see `install_signal_handlers`. The Kafka clients and the vendors' message-id rules come from the caller.
    """
    own_engine = engine is None
    engine = engine or make_engine(settings.effective_database_url)
    try:
        loop = ProcessorLoop(processor, settings, stop_flag, make_session_factory(engine), clients=clients,
                             canonical_id=canonical_id)
        return loop.run()
    finally:
        if own_engine:
            engine.dispose()


def install_signal_handlers(stop_flag: threading.Event) -> None:
    """SIGTERM and SIGINT set the stop flag: the loop finishes its batch, commits and exits."""
    import signal

    def _stop(signum, _frame) -> None:
        log.info("signal %s: stopping after the current batch", signum)
        stop_flag.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

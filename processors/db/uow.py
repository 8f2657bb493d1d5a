"""The Unit of Work: one session, one transaction, state and outbox rows committed together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import inspect, text, tuple_, update
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core.events import Envelope, topic_name, utc_now
from core.settings import Settings
from processors.db.aggregate_deltas import AggregateDeltas
from processors.db.chunks import in_chunks
from processors.db.copy import copy_rows
from processors.db.models import OutboxRecord, Receipt, SentMessage

# (vendor, message id) -> the vendor's canonical spelling of it; the vendors' own rules, given by the application
CanonicalId = Callable[[str, str], str]


class UnitOfWork:
    """One session per unit; `commit()` makes state and outbox durable together, exit drops the rest.

    New rows nothing reads back within the unit (receipt history, outbox) are queued with `insert_later` and
    written at commit in one statement per table (COPY on PostgreSQL): an ORM flush of 500 new objects costs ~5x
    more.
    """

    session: Session

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings, canonical_id: CanonicalId) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.canonical_id = canonical_id
        self.outbox_count = 0
        self._reset()

    def _reset(self) -> None:
        """Forget queued rows and cached lookups."""
        self.queued: dict[type[DeclarativeBase], list[Any]] = {}
        # (vendor, normalized message id) -> the sent message, or None when known not to exist yet.
        self.sent_messages: dict[tuple[str, str], SentMessage | None] = {}
        # (vendor, normalized id) -> the sent message id owning a part with that id, or None: there is none
        self.part_owners: dict[tuple[str, str], int | None] = {}
        # What a batch's prefetch loaded so its handlers ask nothing per event; None: not loaded, ask the database.
        # The receipts parked under the batch's sends' keys (processors.domain.parked.ParkedIndex)
        self.parked: Any = None
        # (vendor, message id) of the batch's sends that have unattributed clicks
        self.waiting_clicks: set[tuple[str, str]] | None = None
        # ids of the sent messages that have an attributed click (the batch's own clicks added as they come)
        self.clicked: set[int] | None = None
        # report aggregate changes of this unit, added to their tables last before commit
        self.aggregates = AggregateDeltas()
        # steps to run at commit once the unit's new rows are in the database (see defer)
        self.deferred: list[Callable[[], None]] = []
        # per model, primary keys drawn from its sequence for rows this unit may add (see reserve_ids)
        self.reserved: dict[type[DeclarativeBase], list[int]] = {}
        # (id, version as read) of stored parked receipts this unit matched, claimed at commit (see claim_parked)
        self.unparked: set[tuple[int, int]] = set()

    def __enter__(self) -> UnitOfWork:
        self.session = self.session_factory()
        self.outbox_count = 0
        self._reset()
        return self

    def __exit__(self, *exc_info) -> None:
        self.rollback()
        self.session.close()

    def insert_later(self, row: DeclarativeBase | dict[str, Any], model: type[DeclarativeBase] | None = None) -> None:
        """Queue a new row (a transient model object, read at commit, or a dict of `model`) for the bulk insert."""
        self.queued.setdefault(model or type(row), []).append(row)

    def defer(self, step: Callable[[], None]) -> None:
        """Run `step` at commit, after the unit's pending rows are flushed and before its queued rows and
        aggregates are written. For work that needs the batch's new rows in the database (an UPDATE pointing
        clicks at a new sent message): done per event, each would flush the batch's rows so far, a few at a time."""
        self.deferred.append(step)

    def reserve_ids(self, model: type[DeclarativeBase], count: int) -> None:
        """Draw `count` ids for new rows of `model` from its PostgreSQL sequence, in one query.

        A row created with its id needs no INSERT ... RETURNING: the flush sends the batch's new rows as one
        executemany instead of one multi-row RETURNING statement, which psycopg parses placeholder by placeholder
        (3-4 times the time per row, measured). Ids drawn and not used are gaps, as after any rollback. SQLite has
        no sequences: there the database numbers the rows.
        """
        if count <= 0 or self.session.get_bind().dialect.name != "postgresql":
            return
        table = model.__table__.name
        drawn = self.session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
            {"table": table, "count": count},
        ).scalars()
        self.reserved.setdefault(model, []).extend(sorted(drawn, reverse=True))

    def new_id(self, model: type[DeclarativeBase]) -> int | None:
        """An id reserved for a new row of `model`, or None (none reserved: the database assigns it)."""
        reserved = self.reserved.get(model)
        return reserved.pop() if reserved else None

    def claim_parked(self, receipt: Receipt) -> None:
        """A parked receipt is being matched: at commit this unit claims it, and fails if another unit did first.

        Two units can match the same parked receipt at once (reconciliation's settle, sent-messages, the sweep).
        Each claims its receipts with one `UPDATE ... SET version = version + 1 WHERE (id, version) IN (...)` per
        500, with the versions it read; the database serializes the claims on the rows, so the later one updates
        fewer rows than it claimed and raises StaleDataError, and the runtime retries its batch, which then finds
        them matched. (A versioned mapper did the same with one UPDATE statement per receipt.)
        """
        if inspect(receipt).persistent:  # a receipt parked in this unit is not visible to any other yet
            self.unparked.add((receipt.id, receipt.version))

    def add_outbox(self, envelope: Envelope) -> None:
        """Queue an output event in this transaction; the relay publishes it after commit."""
        self.insert_later(
            {
                "event_id": envelope.id,
                "topic": topic_name(self.settings.topic_prefix, envelope.topic),
                "key": envelope.key,
                "headers": [[name, value.decode()] for name, value in envelope.headers()],
                "value": envelope.value().decode(),
                "created_at": utc_now(),
                "sent_at": None,
            },
            OutboxRecord,
        )
        self.outbox_count += 1

    def flush_queued(self) -> None:
        """Flush the ORM's pending changes, then insert the queued rows: one COPY per table on PostgreSQL (see
        processors/db/copy.py), one executemany elsewhere."""
        self.session.flush()
        postgresql = self.session.get_bind().dialect.name == "postgresql"
        for model, rows in self.queued.items():
            if rows:
                values = [_values(model, row) for row in rows]
                if postgresql:
                    copy_rows(self.session, model.__table__, values)
                else:
                    self.session.execute(model.__table__.insert(), values)
        self.queued = {}

    def commit(self) -> None:
        """Make everything done in this unit durable."""
        self._claim_unparked()
        self.session.flush()
        for step in self.deferred:
            step()
        self.deferred = []
        self.flush_queued()
        self.aggregates.flush(self.session)
        self.session.commit()

    def _claim_unparked(self) -> None:
        """Claim the parked receipts this unit matched (see claim_parked), in id order. The ORM's changes are flushed
        first (the UPDATE autoflushes): the claim compares versions, which only claims change."""
        for chunk in in_chunks(self.unparked):
            claimed = self.session.execute(
                update(Receipt).where(tuple_(Receipt.id, Receipt.version).in_(chunk))
                .values(version=Receipt.version + 1)
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed != len(chunk):
                raise StaleDataError(f"{len(chunk) - claimed} of {len(chunk)} parked receipts were matched by "
                                     "another transaction first")
        self.unparked = set()

    def rollback(self) -> None:
        """Forget everything not committed yet."""
        self._reset()
        self.session.rollback()


def _values(model: type[DeclarativeBase], row: DeclarativeBase | dict[str, Any]) -> dict[str, Any]:
    """The column values of a queued row (autoincrement ids left to the database)."""
    if isinstance(row, dict):
        return row
    values = {}
    for attribute in inspect(model).column_attrs:
        column = attribute.columns[0]
        value = getattr(row, attribute.key)
        if value is None and column.primary_key:
            continue
        if value is None and column.default is not None and column.default.is_scalar:
            value = column.default.arg
        values[attribute.key] = value
    return values

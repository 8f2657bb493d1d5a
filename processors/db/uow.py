"""The Unit of Work: one session, one transaction, state and outbox rows committed together."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from processors.db.models import OutboxRecord
from receiver.contract import Envelope, topic_name, utc_now
from smshooks.settings import Settings


class UnitOfWork:
    """One session per unit; `commit()` makes state and outbox durable together, exit drops the rest."""

    session: Session

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.outbox_count = 0

    def __enter__(self) -> UnitOfWork:
        self.session = self.session_factory()
        self.outbox_count = 0
        return self

    def __exit__(self, *exc_info) -> None:
        self.rollback()
        self.session.close()

    def add_outbox(self, envelope: Envelope) -> None:
        """Queue an output event in this transaction; the relay publishes it after commit."""
        self.session.add(
            OutboxRecord(
                event_id=envelope.id,
                topic=topic_name(self.settings.topic_prefix, envelope.topic),
                key=envelope.key,
                headers=[[name, value.decode()] for name, value in envelope.headers()],
                value=envelope.value().decode(),
                created_at=utc_now(),
            )
        )
        self.outbox_count += 1

    def commit(self) -> None:
        """Make everything done in this unit durable."""
        self.session.commit()

    def rollback(self) -> None:
        """Forget everything not committed yet."""
        self.session.rollback()

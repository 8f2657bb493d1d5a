"""The outbox relay: publish unsent outbox rows to Kafka, then mark them sent (at-least-once)."""

from __future__ import annotations

from kafka import KafkaProducer
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.events import utc_now
from processors.db.models import OutboxRecord

RELAY_BATCH = 500


def relay_outbox(
    session_factory: sessionmaker[Session],
    producer: KafkaProducer,
    limit: int = RELAY_BATCH,
    timeout: float = 10.0,
) -> int:
    """Publish up to `limit` unsent rows in id order, wait for acks, mark them sent; returns rows sent.

    A crash between the acks and the mark re-sends those rows on restart: consumers dedupe on ce_id.
    Rows are locked with SKIP LOCKED on PostgreSQL (SQLite serializes writers), so two relays never
    publish the same row in normal operation.
    """
    with session_factory() as session, session.begin():
        rows = session.scalars(
            select(OutboxRecord)
            .where(OutboxRecord.sent_at.is_(None))
            .order_by(OutboxRecord.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return 0
        futures = [
            producer.send(
                row.topic,
                key=row.key.encode(),
                value=row.value.encode(),
                headers=[(name, value.encode()) for name, value in row.headers],
            )
            for row in rows
        ]
        producer.flush(timeout=timeout)
        for future in futures:
            future.get(timeout=timeout)
        session.execute(
            update(OutboxRecord)
            .where(OutboxRecord.id.in_([row.id for row in rows]))
            .values(sent_at=utc_now())
        )
        return len(rows)


def relay_all(session_factory: sessionmaker[Session], producer: KafkaProducer) -> int:
    """Relay until the outbox has no unsent rows left; returns rows sent."""
    total = 0
    while True:
        sent = relay_outbox(session_factory, producer)
        total += sent
        if sent < RELAY_BATCH:
            return total

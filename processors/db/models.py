"""Typed SQLAlchemy models: the processors' state, history, dedupe and outbox tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from processors.db.types import BigId, UtcDateTime

SHORT = 64
ID = 191
TEXT = 2048


class Base(DeclarativeBase):
    """Declarative base of every processors table."""


class SentMessage(Base):
    """What a sending system told us it handed to a vendor, and its reconciled status."""

    __tablename__ = "sent_messages"
    __table_args__ = (
        UniqueConstraint("vendor", "message_id", name="uq_sent_messages_vendor_message_id"),
        Index("ix_sent_messages_vendor_client_ref", "vendor", "client_ref"),
        Index("ix_sent_messages_vendor_batch_recipient", "vendor", "batch_id", "recipient"),
        Index("ix_sent_messages_sent_at", "sent_at"),
        # the compliance report's "sent after opt-out": messages to one number after a time (migration 0005)
        Index("ix_sent_messages_recipient_sent_at", "recipient", "sent_at"),
        # No index on status (migration 0002): receipts update it, and an unindexed column keeps those
        # updates HOT on PostgreSQL (fillfactor 85 leaves the room), so per-receipt cost stays flat.
        {"postgresql_with": {"fillfactor": 85}},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    vendor: Mapped[str] = mapped_column(String(SHORT))
    message_id: Mapped[str] = mapped_column(String(ID))  # canonical: the vendor module's canonical_message_id
    raw_message_id: Mapped[str] = mapped_column(String(ID))
    batch_id: Mapped[str | None] = mapped_column(String(ID))
    campaign_id: Mapped[str | None] = mapped_column(String(ID))
    client_ref: Mapped[str | None] = mapped_column(String(ID))
    recipient: Mapped[str] = mapped_column(String(SHORT))  # digits_msisdn
    sender: Mapped[str | None] = mapped_column(String(SHORT))
    parts: Mapped[int] = mapped_column(Integer, default=1)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    country_iso2: Mapped[str | None] = mapped_column(String(2))
    account: Mapped[str | None] = mapped_column(String(SHORT))
    status: Mapped[str] = mapped_column(String(16), default="submitted", server_default="submitted")
    status_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    final_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_receipt_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    conflict: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    source_event_id: Mapped[str] = mapped_column(String(SHORT))
    # money (migration 0007), in billionths of the currency unit so sums are exact on every database: what the
    # vendor reported (all parts), and what the sender said to expect; never added across currencies
    price_nanos: Mapped[int | None] = mapped_column(BigInteger)
    price_currency: Mapped[str | None] = mapped_column(String(3))
    expected_price_nanos: Mapped[int | None] = mapped_column(BigInteger)
    expected_currency: Mapped[str | None] = mapped_column(String(3))


class MessagePart(Base):
    """One part of a multipart message that the vendor gave its own id (and its own receipts, and price)."""

    __tablename__ = "message_parts"
    __table_args__ = (
        UniqueConstraint("vendor", "message_id", name="uq_message_parts_vendor_message_id"),
        Index("ix_message_parts_sent_message_id", "sent_message_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sent_message_id: Mapped[int] = mapped_column(ForeignKey("sent_messages.id"))
    vendor: Mapped[str] = mapped_column(String(SHORT))
    message_id: Mapped[str] = mapped_column(String(ID))  # normalized, like receipts'
    part_index: Mapped[int] = mapped_column(Integer)  # 1-based, in the order the sender listed them
    status: Mapped[str] = mapped_column(String(16), default="submitted", server_default="submitted")
    price_nanos: Mapped[int | None] = mapped_column(BigInteger)
    price_currency: Mapped[str | None] = mapped_column(String(3))


class Receipt(Base):
    """Every delivery receipt ever consumed, matched or parked, with the raw payload and what we did."""

    __tablename__ = "receipts"
    __table_args__ = (
        Index("ix_receipts_vendor_message_id", "vendor", "message_id"),
        Index("ix_receipts_sent_message_id", "sent_message_id"),
        Index("ix_receipts_received_at", "received_at"),
        Index(
            "ix_receipts_parked_vendor_message_id", "vendor", "message_id",
            postgresql_where=text("parked"), sqlite_where=text("parked"),
        ),
        Index(
            "ix_receipts_parked_vendor_client_ref", "vendor", "client_ref",
            postgresql_where=text("parked"), sqlite_where=text("parked"),
        ),
        Index(
            "ix_receipts_parked_vendor_batch_recipient", "vendor", "batch_id", "recipient",
            postgresql_where=text("parked"), sqlite_where=text("parked"),
        ),
        Index("ix_receipts_parked_received_at", "received_at", postgresql_where=text("parked"),
              sqlite_where=text("parked")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(SHORT), unique=True)
    vendor: Mapped[str] = mapped_column(String(SHORT))
    message_id: Mapped[str] = mapped_column(String(ID))  # normalized
    raw_message_id: Mapped[str] = mapped_column(String(ID))
    status: Mapped[str] = mapped_column(String(16))
    vendor_status: Mapped[str] = mapped_column(String(SHORT))
    vendor_code: Mapped[str | None] = mapped_column(String(SHORT))
    # the vendor's text for its code, or its vendor module's meaning of it (migration 0006): failure reasons
    error_description: Mapped[str | None] = mapped_column(String(512))
    occurred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    batch_id: Mapped[str | None] = mapped_column(String(ID))
    client_ref: Mapped[str | None] = mapped_column(String(ID))
    recipient: Mapped[str | None] = mapped_column(String(SHORT))
    count: Mapped[int | None] = mapped_column(Integer)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)  # the whole event data, vendor payload included
    sent_message_id: Mapped[int | None] = mapped_column(ForeignKey("sent_messages.id"))
    parked: Mapped[bool] = mapped_column(Boolean, default=False)
    # applied | ignored_older | duplicate | conflict | parked | summary
    outcome: Mapped[str] = mapped_column(String(16))
    previous_status: Mapped[str | None] = mapped_column(String(16))
    # how many times the receipt was claimed out of parking (UnitOfWork.claim_parked): 1 stored, 2 matched later
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    # Set when a receipt is matched to a sent message stored in the same unit: its id comes with the unit's one
    # batched INSERT at flush instead of a flush per send. Never loaded (nothing reads it).
    sent_message: Mapped[SentMessage | None] = relationship(lazy="raise")


class ProcessedEvent(Base):
    """Event ids a consumer group already applied, so a replay after a crash changes nothing."""

    __tablename__ = "processed_events"

    consumer_group: Mapped[str] = mapped_column(String(ID), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    topic: Mapped[str] = mapped_column(String(ID))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigId)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxRecord(Base):
    """An event written in the same transaction as the state it describes; the relay publishes it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL"),
              sqlite_where=text("sent_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(SHORT))
    topic: Mapped[str] = mapped_column(String(ID))
    key: Mapped[str] = mapped_column(String(ID))
    headers: Mapped[list[list[str]]] = mapped_column(JSON)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OptOutState(Base):
    """Current consent of one subscriber for one scope key (our number, or '*' account-wide)."""

    __tablename__ = "opt_out_state"
    __table_args__ = (
        UniqueConstraint("msisdn", "scope_key", name="uq_opt_out_state_msisdn_scope_key"),
        # the suppression list: who is opted out, since when, in that order (GET /v1/opt-outs?since=, export)
        Index("ix_opt_out_state_opted_out_updated_at", "updated_at", "id",
              postgresql_where=text("opted_out"), sqlite_where=text("opted_out = 1")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msisdn: Mapped[str] = mapped_column(String(SHORT))
    scope_key: Mapped[str] = mapped_column(String(SHORT))
    opted_out: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)  # the inbound message's receive time
    last_keyword: Mapped[str] = mapped_column(String(SHORT))
    source_event_id: Mapped[str] = mapped_column(String(SHORT))


class OptOutHistory(Base):
    """Every STOP, START and HELP we classified, and every vendor refusal for an opt-out, with its source event."""

    __tablename__ = "opt_out_history"
    __table_args__ = (
        Index("ix_opt_out_history_msisdn_scope_key", "msisdn", "scope_key"),
        Index("ix_opt_out_history_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msisdn: Mapped[str] = mapped_column(String(SHORT))
    scope: Mapped[str] = mapped_column(String(16))  # sender | account
    scope_key: Mapped[str] = mapped_column(String(SHORT))
    sender: Mapped[str | None] = mapped_column(String(SHORT))
    action: Mapped[str] = mapped_column(String(16))  # opt_out | opt_in | help
    # keyword (the subscriber wrote STOP/START/HELP) | vendor (a vendor refused a message: recipient opted out)
    source: Mapped[str] = mapped_column(String(16), default="keyword", server_default="keyword")
    # what proves it: the vendor, its error code and description for a vendor refusal (keywords carry `text`)
    evidence: Mapped[str | None] = mapped_column(String(TEXT))
    keyword: Mapped[str] = mapped_column(String(SHORT))
    text: Mapped[str | None] = mapped_column(String(TEXT))
    changed: Mapped[bool] = mapped_column(Boolean)  # False when already in that state (repeat STOP)
    vendor: Mapped[str] = mapped_column(String(SHORT))
    source_event_id: Mapped[str] = mapped_column(String(SHORT))
    occurred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Click(Base):
    """A link click, attributed to its sent message and campaign when we know them."""

    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_vendor_message_id", "vendor", "message_id"),
        Index("ix_clicks_sent_message_id", "sent_message_id"),
        Index("ix_clicks_clicked_at", "clicked_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(SHORT), unique=True)
    vendor: Mapped[str] = mapped_column(String(SHORT))
    message_id: Mapped[str] = mapped_column(String(ID))  # normalized
    sent_message_id: Mapped[int | None] = mapped_column(ForeignKey("sent_messages.id"))
    campaign_id: Mapped[str | None] = mapped_column(String(ID))
    batch_id: Mapped[str | None] = mapped_column(String(ID))
    recipient: Mapped[str] = mapped_column(String(SHORT))
    url: Mapped[str] = mapped_column(String(TEXT))
    clicked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    country: Mapped[str | None] = mapped_column(String(SHORT))
    country_iso2: Mapped[str | None] = mapped_column(String(2))
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)


# Report aggregates (migration 0008): counts the processors keep per day and dimensions as they write the rows
# above, in the same transaction, so reports cost the number of groups, not of messages. A dimension the row did
# not have is stored as "" (NULLs never conflict in a unique key, so an upsert could not find the row).
AGGREGATE_COUNTERS = (
    "sent", "submitted", "pending", "unknown", "delivered", "failed", "expired", "rejected", "conflicts", "parts",
    "clicks", "clicked_messages",
    # delivered messages per time-to-delivery range of the report's histogram (exact, unlike the fine buckets)
    "ttd_lt_10s", "ttd_lt_30s", "ttd_lt_1m", "ttd_lt_5m", "ttd_lt_15m", "ttd_lt_1h", "ttd_lt_6h", "ttd_lt_24h",
    "ttd_ge_24h",
)


def _counter() -> Mapped[int]:
    return mapped_column(BigInteger, default=0, server_default=text("0"))


class SentAggregate(Base):
    """Sent messages per UTC day of sent_at, vendor, sender, campaign and country: every status and click count."""

    __tablename__ = "report_sent_aggregates"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD of sent_at, UTC
    vendor: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    sender: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(ID), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    sent: Mapped[int] = _counter()
    submitted: Mapped[int] = _counter()
    pending: Mapped[int] = _counter()
    unknown: Mapped[int] = _counter()
    delivered: Mapped[int] = _counter()
    failed: Mapped[int] = _counter()
    expired: Mapped[int] = _counter()
    rejected: Mapped[int] = _counter()
    conflicts: Mapped[int] = _counter()
    parts: Mapped[int] = _counter()  # segments
    clicks: Mapped[int] = _counter()
    clicked_messages: Mapped[int] = _counter()
    ttd_lt_10s: Mapped[int] = _counter()
    ttd_lt_30s: Mapped[int] = _counter()
    ttd_lt_1m: Mapped[int] = _counter()
    ttd_lt_5m: Mapped[int] = _counter()
    ttd_lt_15m: Mapped[int] = _counter()
    ttd_lt_1h: Mapped[int] = _counter()
    ttd_lt_6h: Mapped[int] = _counter()
    ttd_lt_24h: Mapped[int] = _counter()
    ttd_ge_24h: Mapped[int] = _counter()


class DeliveryTimeAggregate(Base):
    """Delivered messages per fine log-scale time-to-delivery bucket (see processors/domain/aggregates.py)."""

    __tablename__ = "report_delivery_time_aggregates"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    sender: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(ID), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    messages: Mapped[int] = _counter()


class DeliveryTimeRollup(Base):
    """The fine time-to-delivery buckets per day and vendor only: what a report grouped by vendor and/or day reads
    (a few hundred buckets per day and vendor, instead of per every sender, campaign and country as well)."""

    __tablename__ = "report_delivery_time_rollups"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    messages: Mapped[int] = _counter()


class ParkedReceiptAggregate(Base):
    """Receipts parked (no sent message yet) per UTC day of their receive time and vendor."""

    __tablename__ = "report_parked_receipt_aggregates"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    parked: Mapped[int] = _counter()


class ConsentAggregate(Base):
    """Consent changes (opt-outs, opt-ins) per UTC day of receipt, vendor and our number."""

    __tablename__ = "report_consent_aggregates"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    sender: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    opt_outs: Mapped[int] = _counter()
    opt_ins: Mapped[int] = _counter()

"""Reconciliation: match each delivery receipt to its sent message and drive the status forward."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select
from sqlalchemy.orm import Session

from processors.db.chunks import in_chunks
from processors.db.models import Click, MessagePart, Receipt, SentMessage
from processors.db.uow import UnitOfWork
from processors.handlers import opt_outs, statuses
from processors.handlers.money import currency_code, to_nanos
from receiver.contract import (
    FINAL_STATUSES,
    DeliveryReceipt,
    Envelope,
    MessageStatus,
    digits_msisdn,
    normalize_message_id,
    utc_now,
)
from receiver.contract import SentMessage as SentMessagePayload
from smshooks.settings import Settings


def locked(statement: Select) -> Select:
    """The sent messages a receipt will change, row-locked until commit (PostgreSQL; SQLite locks the file).

    Reconciliation applies new receipts while sent-messages applies the ones parked before the send arrived;
    without the lock both could read the same status and the later commit would overwrite the other's change
    (a delivered undone by an older pending). `FOR NO KEY UPDATE` still lets receipts referencing the row be
    inserted.
    """
    return statement.with_for_update(key_share=True)


def handle_receipt(envelope: Envelope, uow: UnitOfWork) -> None:
    """Store the receipt as history, then apply it to its sent message, or park it until that arrives."""
    payload = envelope.payload
    assert isinstance(payload, DeliveryReceipt)
    receipt = receipt_row(envelope, payload)
    # Nothing reads a new receipt back within the unit: it is inserted with the batch's others at commit.
    uow.insert_later(receipt)
    if payload.count is not None and payload.recipient is None:
        # Sinch batch summary lines (a count per status, no recipient) describe many messages at once:
        # history only, never a status change, never parked.
        receipt.outcome = statuses.SUMMARY
        return
    # No autoflush: a sent message changed earlier in the batch comes back from the identity map (or the
    # unit's cache) with its pending changes; they need not reach the database before this lookup.
    with uow.session.no_autoflush:
        sent = find_sent_message(uow.session, receipt, uow.sent_messages)
    if payload.recipient_opted_out:
        record_refusal(uow, envelope, payload, sent)
    if sent is None:
        receipt.parked = True  # the sent message may not be stored yet; sent_messages re-matches it
        receipt.outcome = statuses.PARKED
        return
    apply_receipt(uow, sent, receipt)


def record_refusal(uow: UnitOfWork, envelope: Envelope, payload: DeliveryReceipt, sent: SentMessage | None) -> None:
    """The vendor refused the message because its recipient opted out: an opt-out with the receipt as evidence.

    Recipient and sender come from the receipt, else from the matched sent message; a refusal naming no
    recipient cannot be attributed to anyone and only stays in the receipt history.
    """
    recipient = digits_msisdn(payload.recipient) or (sent.recipient if sent else None)
    if not recipient:
        return
    sender = (sent.sender if sent else None) or digits_msisdn(payload.sender)
    # with autoflush: a second refusal for the same number in this batch must see the consent row the first added
    opt_outs.record_vendor_refusal(uow, payload, envelope.id, recipient, sender)


def prefetch_sent_messages(envelopes: list[Envelope], uow: UnitOfWork) -> None:
    """Load and row-lock the sent messages a batch names (its receipts', or its sends' own), with one IN query per
    vendor and 500 ids, in (vendor, message id) order.

    Ids not found are remembered as None, so the batch asks the database once per (vendor, message id). Both
    processors that change sent messages (reconciliation, sent-messages) prefetch through here, so they lock in
    one global order and two batches touching the same messages wait for each other instead of deadlocking.
    """
    wanted: dict[str, set[str]] = {}
    for envelope in envelopes:
        payload = envelope.payload
        if isinstance(payload, DeliveryReceipt | SentMessagePayload):
            message_id = normalize_message_id(payload.vendor, payload.message_id)
            if (payload.vendor, message_id) not in uow.sent_messages:
                wanted.setdefault(payload.vendor, set()).add(message_id)
    with uow.session.no_autoflush:
        for vendor in sorted(wanted):
            for chunk in in_chunks(wanted[vendor]):
                uow.sent_messages.update({(vendor, message_id): None for message_id in chunk})
                statement = select(SentMessage).where(SentMessage.vendor == vendor, SentMessage.message_id.in_(chunk))
                for sent in uow.session.scalars(locked(statement.order_by(SentMessage.message_id))):
                    uow.sent_messages[(vendor, sent.message_id)] = sent


def receipt_row(envelope: Envelope, payload: DeliveryReceipt) -> Receipt:
    """The history row of a receipt, with the whole event data as raw."""
    return Receipt(
        event_id=envelope.id,
        vendor=payload.vendor,
        message_id=normalize_message_id(payload.vendor, payload.message_id),
        raw_message_id=payload.message_id,
        status=payload.status,
        vendor_status=payload.vendor_status,
        vendor_code=payload.vendor_code,
        error_description=(payload.error_description or "")[:512] or None,
        occurred_at=payload.occurred_at,
        received_at=payload.received_at,
        batch_id=payload.batch_id,
        client_ref=payload.client_ref,
        recipient=digits_msisdn(payload.recipient),
        count=payload.count,
        raw=payload.to_data(),
        parked=False,
        outcome=statuses.PARKED,
    )


def sent_message_by_id(
    session: Session,
    vendor: str,
    message_id: str,
    known: dict[tuple[str, str], SentMessage | None] | None = None,
    *,
    lock: bool = False,
) -> SentMessage | None:
    """The sent message with this vendor and normalized message id (the unique hot-path lookup).

    `known` is a unit's cache filled by prefetch_sent_messages: a hit (even None) skips the query. `lock` for a
    caller that will change its status (see `locked`).
    """
    if known is not None and (vendor, message_id) in known:
        return known[(vendor, message_id)]
    statement = select(SentMessage).where(SentMessage.vendor == vendor, SentMessage.message_id == message_id)
    return session.scalars(locked(statement) if lock else statement).first()


def find_sent_message(
    session: Session, receipt: Receipt, known: dict[tuple[str, str], SentMessage | None] | None = None
) -> SentMessage | None:
    """The sent message by (vendor, message id), else by client reference, else by batch + recipient; locked."""
    sent = sent_message_by_id(session, receipt.vendor, receipt.message_id, known, lock=True)
    if sent is None and receipt.client_ref:
        sent = session.scalars(
            locked(
                select(SentMessage)
                .where(SentMessage.vendor == receipt.vendor, SentMessage.client_ref == receipt.client_ref)
                .order_by(SentMessage.id)
                .limit(1)
            )
        ).first()
    if sent is None and receipt.batch_id and receipt.recipient:
        sent = session.scalars(
            locked(
                select(SentMessage)
                .where(
                    SentMessage.vendor == receipt.vendor,
                    SentMessage.batch_id == receipt.batch_id,
                    SentMessage.recipient == receipt.recipient,
                )
                .order_by(SentMessage.id)
                .limit(1)
            )
        ).first()
    if sent is None:
        # a later part of a multipart message: its own id was registered with its logical message
        owner = select(MessagePart.sent_message_id).where(
            MessagePart.vendor == receipt.vendor, MessagePart.message_id == receipt.message_id
        )
        sent = session.scalars(locked(select(SentMessage).where(SentMessage.id.in_(owner)))).first()
    return sent


def apply_receipt(uow: UnitOfWork, sent: SentMessage, receipt: Receipt) -> None:
    """Run one matched receipt through the state machine, recording the outcome and emitting MessageStatus."""
    receipt.sent_message_id = sent.id
    receipt.parked = False
    receipt.previous_status = sent.status
    if sent.first_receipt_received_at is None or receipt.received_at < sent.first_receipt_received_at:
        sent.first_receipt_received_at = receipt.received_at
    parts = message_parts(uow.session, sent) if sent.parts > 1 else []
    part = next((p for p in parts if p.message_id == receipt.message_id), None)
    record_price(uow, sent, receipt, part, parts)
    incoming = receipt.status
    part_moved = False
    if part is not None:
        # a receipt of one part moves that part; the message takes the status its parts add up to
        part_moved = statuses.decide(part.status, receipt.status) == statuses.APPLIED
        if part_moved:
            part.status = receipt.status
        incoming = statuses.from_parts([p.status for p in parts])
    outcome = statuses.decide(sent.status, incoming)
    if part_moved and outcome in (statuses.DUPLICATE, statuses.IGNORED_OLDER):
        outcome = statuses.PART_APPLIED
    receipt.outcome = outcome
    if outcome == statuses.APPLIED:
        previous = sent.status
        sent.status = incoming
        # Our receive time, not the vendor's: vendor clocks lack zones or precision (Twilio's done date).
        sent.status_changed_at = receipt.received_at
        if statuses.is_final(incoming):
            sent.final_at = receipt.received_at
            if incoming == "delivered":
                sent.delivered_at = receipt.received_at
        uow.add_outbox(Envelope.wrap(message_status(sent, receipt, previous, conflict=False)))
    elif outcome == statuses.CONFLICT:
        # The first final stays; the event says so (status = kept final) and carries the conflicting
        # receipt's vendor status and code, so downstream can see what disagreed.
        sent.conflict = True
        uow.add_outbox(Envelope.wrap(message_status(sent, receipt, sent.status, conflict=True)))


def message_parts(session: Session, sent: SentMessage) -> list[MessagePart]:
    """The registered parts of a multipart message, in part order (none when the vendor gave parts no ids)."""
    statement = select(MessagePart).where(MessagePart.sent_message_id == sent.id).order_by(MessagePart.part_index)
    return list(session.scalars(statement))


def record_price(uow: UnitOfWork, sent: SentMessage, receipt: Receipt, part: MessagePart | None,
                 parts: list[MessagePart]) -> None:
    """Keep what the vendor says the message (or one part) cost, and the segments it billed.

    A receipt's price is in its own currency, else the vendor's configured one, else unknown. A message priced per
    part costs the sum of its parts only while they share one currency: amounts in different currencies are never
    added (the message's price stays unknown).
    """
    data = receipt.raw or {}
    segments = data.get("parts")
    if isinstance(segments, int) and segments > sent.parts and part is None:
        sent.parts = segments  # Twilio NumSegments: the message was billed as this many segments
    nanos = to_nanos(data.get("price"))
    if nanos is None:
        return
    currency = currency_code(data.get("currency")) or uow.settings.vendor(sent.vendor).currency
    if part is None:
        sent.price_nanos, sent.price_currency = nanos, currency
        return
    part.price_nanos, part.price_currency = nanos, currency
    priced = [p for p in parts if p.price_nanos is not None]
    currencies = {p.price_currency for p in priced}
    if len(currencies) == 1:
        sent.price_nanos, sent.price_currency = sum(p.price_nanos for p in priced), currencies.pop()
    else:
        sent.price_nanos = sent.price_currency = None


def message_status(sent: SentMessage, receipt: Receipt, previous: str, *, conflict: bool) -> MessageStatus:
    """The sms.message_status.v1 payload for a change (or conflict) caused by one receipt."""
    return MessageStatus(
        vendor=sent.vendor,
        message_id=sent.message_id,
        status=sent.status,
        previous_status=previous,
        is_final=statuses.is_final(sent.status),
        conflict=conflict,
        receipt_event_id=receipt.event_id,
        changed_at=receipt.received_at,
        received_at=receipt.received_at,
        vendor_status=receipt.vendor_status,
        vendor_code=receipt.vendor_code,
        recipient=sent.recipient,
        client_ref=sent.client_ref,
        batch_id=sent.batch_id,
    )


def parked_receipts_for(session: Session, sent: SentMessage) -> list[Receipt]:
    """Parked receipts that belong to a sent message, oldest first (vendor time, then our receive time)."""
    keys: list[ColumnElement[bool]] = [Receipt.message_id == sent.message_id]
    if sent.parts > 1:
        part_ids = select(MessagePart.message_id).where(MessagePart.sent_message_id == sent.id)
        keys.append(Receipt.message_id.in_(part_ids))
    if sent.client_ref:
        keys.append(Receipt.client_ref == sent.client_ref)
    if sent.batch_id:
        keys.append(and_(Receipt.batch_id == sent.batch_id, Receipt.recipient == sent.recipient))
    found: dict[int, Receipt] = {}
    for key in keys:  # one indexed lookup per key rather than an OR the planner may not split
        statement = select(Receipt).where(Receipt.parked, Receipt.vendor == sent.vendor, key)
        for receipt in session.scalars(statement):
            found[receipt.id] = receipt
    return sorted(found.values(), key=lambda r: (r.occurred_at or r.received_at, r.received_at, r.id))


def rematch_parked(uow: UnitOfWork, sent: SentMessage) -> int:
    """Apply the receipts parked for a newly stored sent message, in the order they happened."""
    parked = parked_receipts_for(uow.session, sent)
    for receipt in parked:
        apply_receipt(uow, sent, receipt)
    return len(parked)


def rematch_receipts(uow: UnitOfWork, receipts: list[Receipt]) -> int:
    """For each still-parked receipt whose sent message exists by now, apply that message's parked receipts."""
    applied = 0
    for receipt in receipts:
        if not receipt.parked:
            continue  # applied above, with an earlier receipt of the same sent message
        sent = find_sent_message(uow.session, receipt)
        if sent is not None:
            applied += rematch_parked(uow, sent)
    return applied


def settle_parked(envelopes: list[Envelope], uow: UnitOfWork) -> int:
    """After a batch commits: re-match the receipts it parked whose sent message was committed meanwhile.

    A receipt parked in the same instant its sent message is stored is missed by both processors (each sees
    only the other's state from before). Both re-check after their commit (see settle_sent_messages); the
    later re-check always sees the other's commit, and row versions make sure only one of them applies it.
    """
    event_ids = [e.id for e in envelopes if isinstance(e.payload, DeliveryReceipt)]
    parked: list[Receipt] = []
    for chunk in in_chunks(event_ids):
        parked.extend(uow.session.scalars(select(Receipt).where(Receipt.parked, Receipt.event_id.in_(chunk))))
    return rematch_receipts(uow, parked)


SWEEP_LIMIT = 500


def stored_sent_messages_awaited(
    session: Session, model: type[Receipt] | type[Click], waiting: ColumnElement[bool]
) -> list[SentMessage]:
    """Sent messages stored by now that rows of `model` (same vendor and message id, `waiting`) still wait for.

    The periodic sweeps' query, up to SWEEP_LIMIT a pass: a row consumed while its sent message was being
    committed by the sent-messages processor is missed by both sides, and only a later look finds the pair.
    """
    statement = (
        select(SentMessage)
        .join(model, and_(model.vendor == SentMessage.vendor, model.message_id == SentMessage.message_id))
        .where(waiting)
        .distinct()
        .limit(SWEEP_LIMIT)
    )
    return list(session.scalars(statement).all())


def sweep_parked(uow: UnitOfWork) -> int:
    """Match parked receipts whose sent message exists by now; returns how many receipts were applied.

    Two processors meet here: sent-messages re-matches the receipts parked when it looks, reconciliation parks
    a receipt when it finds no sent message. If both commit at the same moment, each misses the other's
    uncommitted row; the settles after each commit catch that at once, and this sweep is the fallback for a
    settle that failed (the database was away).
    """
    awaited = [sent.id for sent in stored_sent_messages_awaited(uow.session, Receipt, Receipt.parked)]
    # PostgreSQL refuses FOR UPDATE with DISTINCT: lock them in a second read, which also refreshes them
    statement = locked(select(SentMessage).where(SentMessage.id.in_(awaited)))
    statement = statement.order_by(SentMessage.vendor, SentMessage.message_id)  # prefetch_sent_messages' lock order
    fresh = uow.session.scalars(statement.execution_options(populate_existing=True)).all()
    return sum(rematch_parked(uow, sent) for sent in fresh)


def unmatched_receipts_condition(settings: Settings, now: datetime | None = None) -> ColumnElement[bool]:
    """Receipts parked longer than `unmatched_receipt_hours`: the report's 'unmatched receipts'."""
    cutoff = (now or utc_now()) - timedelta(hours=settings.unmatched_receipt_hours)
    return and_(Receipt.parked, Receipt.received_at < cutoff)


def count_unmatched_receipts(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """How many receipts are still parked after `unmatched_receipt_hours`."""
    statement = select(func.count()).select_from(Receipt).where(unmatched_receipts_condition(settings, now))
    return session.scalar(statement) or 0


def missing_receipts_condition(settings: Settings, now: datetime | None = None) -> ColumnElement[bool]:
    """Sent messages with no final status after `missing_hours_for(vendor)` (per-vendor overrides apply)."""
    now = now or utc_now()
    not_final = SentMessage.status.not_in(sorted(FINAL_STATUSES))
    overridden = {name: settings.missing_hours_for(name) for name in settings.vendors}
    default_cutoff = now - timedelta(hours=settings.missing_receipt_hours)
    clauses = [
        and_(SentMessage.vendor == vendor, SentMessage.sent_at < now - timedelta(hours=hours))
        for vendor, hours in overridden.items()
    ]
    others = SentMessage.sent_at < default_cutoff
    if overridden:
        others = and_(not_(SentMessage.vendor.in_(sorted(overridden))), others)
    return and_(not_final, or_(others, *clauses))


def count_missing_receipts(
    session: Session, settings: Settings, now: datetime | None = None
) -> dict[str, int]:
    """Missing receipts per vendor (sent messages still without a final status past the vendor's age)."""
    statement = (
        select(SentMessage.vendor, func.count())
        .where(missing_receipts_condition(settings, now))
        .group_by(SentMessage.vendor)
    )
    return {vendor: count for vendor, count in session.execute(statement)}

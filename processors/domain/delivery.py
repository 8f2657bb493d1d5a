"""Delivery: find the sent message a receipt belongs to and move its status forward (used by receipts and sends)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, inspect, select
from sqlalchemy.orm import Session

from core.events import DeliveryReceipt, Envelope, MessageStatus
from core.events import SentMessage as SentMessagePayload
from processors.db.chunks import among, in_chunks
from processors.db.models import Click, MessagePart, Receipt, SentMessage
from processors.db.uow import UnitOfWork
from processors.domain import aggregates, statuses
from processors.domain.money import currency_code, to_nanos
from processors.domain.parked import ParkedIndex, keys_of


def locked(statement: Select) -> Select:
    """The sent messages a receipt will change, row-locked until commit (PostgreSQL; SQLite locks the file).

    Reconciliation applies new receipts while sent-messages applies the ones parked before the send arrived;
    without the lock both could read the same status and the later commit would overwrite the other's change
    (a delivered undone by an older pending). `FOR NO KEY UPDATE` still lets receipts referencing the row be
    inserted.
    """
    return statement.with_for_update(key_share=True)


def prefetch_sent_messages(envelopes: list[Envelope], uow: UnitOfWork) -> None:
    """Load and row-lock the sent messages a batch names (its receipts', or its sends' own), with one IN query per
    vendor and 500 ids, in (vendor, message id) order.

    Ids not found are remembered as None, so the batch asks the database once per (vendor, message id). Both
    processors that change sent messages (reconciliation, sent-messages) prefetch through here, so they lock in
    one global order and two batches touching the same messages wait for each other instead of deadlocking.
    """
    keys = [(payload.vendor, uow.canonical_id(payload.vendor, payload.message_id))
            for payload in (envelope.payload for envelope in envelopes)
            if isinstance(payload, DeliveryReceipt | SentMessagePayload)]
    load_sent_messages(uow, keys)


def load_sent_messages(uow: UnitOfWork, keys: list[tuple[str, str]], *, lock: bool = True) -> None:
    """Load the sent messages of these (vendor, normalized message id) keys into the unit's cache, None for those
    not stored, row-locked (unless `lock` is False) in prefetch_sent_messages' lock order; for the ids not found,
    also which sent message owns a part with that id (find_sent_message's last resort), so nothing is asked again
    per receipt."""
    wanted: dict[str, set[str]] = {}
    for vendor, message_id in keys:
        if (vendor, message_id) not in uow.sent_messages:
            wanted.setdefault(vendor, set()).add(message_id)
    with uow.session.no_autoflush:
        for vendor in sorted(wanted):
            for chunk in in_chunks(wanted[vendor]):
                uow.sent_messages.update({(vendor, message_id): None for message_id in chunk})
                statement = select(SentMessage).where(SentMessage.vendor == vendor,
                                                      among(uow.session, SentMessage.message_id, chunk))
                statement = statement.order_by(SentMessage.message_id)
                for sent in uow.session.scalars(locked(statement) if lock else statement):
                    uow.sent_messages[(vendor, sent.message_id)] = sent
                missing = [m for m in chunk if uow.sent_messages[(vendor, m)] is None
                           and (vendor, m) not in uow.part_owners]
                if missing:
                    uow.part_owners.update({(vendor, message_id): None for message_id in missing})
                    parts = select(MessagePart.message_id, MessagePart.sent_message_id).where(
                        MessagePart.vendor == vendor, among(uow.session, MessagePart.message_id, missing))
                    uow.part_owners.update({(vendor, m): owner for m, owner in uow.session.execute(parts)})


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


def find_sent_message(uow: UnitOfWork, receipt: Receipt) -> SentMessage | None:
    """The sent message by (vendor, message id), else by client reference, else by batch + recipient, else as the
    owner of a part with that id; locked. The unit's caches (see load_sent_messages) answer before the database."""
    session = uow.session
    sent = sent_message_by_id(session, receipt.vendor, receipt.message_id, uow.sent_messages, lock=True)
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
        key = (receipt.vendor, receipt.message_id)
        if key in uow.part_owners and uow.part_owners[key] is None:
            return None  # the batch's prefetch found no such part
        owner = select(MessagePart.sent_message_id).where(
            MessagePart.vendor == receipt.vendor, MessagePart.message_id == receipt.message_id
        )
        sent = session.scalars(locked(select(SentMessage).where(SentMessage.id.in_(owner)))).first()
    return sent


def apply_receipt(uow: UnitOfWork, sent: SentMessage, receipt: Receipt) -> None:
    """Run one matched receipt through the state machine, recording the outcome and emitting MessageStatus."""
    before = aggregates.before_change(sent)
    if receipt.parked:
        aggregates.record_parked(uow, receipt.vendor, receipt.received_at, -1)
        uow.claim_parked(receipt)
    link(uow, receipt, sent)
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
    aggregates.record_message(uow, before, sent)


def link(uow: UnitOfWork, receipt: Receipt, sent: SentMessage) -> None:
    """Point a receipt at its sent message, without a flush when both are in the session."""
    if sent.id is not None:
        receipt.sent_message_id = sent.id
    elif inspect(receipt).persistent:
        receipt.sent_message = sent  # a send of this unit not inserted yet: the flush fills the id in
    else:
        uow.session.flush()  # a new receipt is queued for the bulk insert, which reads the id column itself
        receipt.sent_message_id = sent.id


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


def parked_receipts_for(uow: UnitOfWork, sent: SentMessage) -> list[Receipt]:
    """Parked receipts that belong to a sent message, oldest first (vendor time, then our receive time); from the
    batch's prefetch (processors.domain.parked) when it covers the message, else one query per key."""
    cached = uow.parked.receipts_for(sent) if uow.parked is not None else None
    if cached is not None:
        found = {receipt.id: receipt for receipt in cached if receipt.parked}
    else:
        found = {}
        for key in parked_keys(sent):  # one indexed lookup per key rather than an OR the planner may not split
            statement = select(Receipt).where(Receipt.parked, Receipt.vendor == sent.vendor, key)
            for receipt in uow.session.scalars(statement):
                found[receipt.id] = receipt
    return sorted(found.values(), key=lambda r: (r.occurred_at or r.received_at, r.received_at, r.id))


def parked_keys(sent: SentMessage) -> list[ColumnElement[bool]]:
    """The conditions a parked receipt of this sent message meets one of: its id, a part's id, its client
    reference, its batch and recipient."""
    keys: list[ColumnElement[bool]] = [Receipt.message_id == sent.message_id]
    if sent.parts > 1:
        part_ids = select(MessagePart.message_id).where(MessagePart.sent_message_id == sent.id)
        keys.append(Receipt.message_id.in_(part_ids))
    if sent.client_ref:
        keys.append(Receipt.client_ref == sent.client_ref)
    if sent.batch_id:
        keys.append(and_(Receipt.batch_id == sent.batch_id, Receipt.recipient == sent.recipient))
    return keys


def rematch_parked(uow: UnitOfWork, sent: SentMessage) -> int:
    """Apply the receipts parked for a newly stored sent message, in the order they happened."""
    parked = parked_receipts_for(uow, sent)
    for receipt in parked:
        apply_receipt(uow, sent, receipt)
    return len(parked)


def rematch_receipts(uow: UnitOfWork, receipts: list[Receipt]) -> int:
    """For each still-parked receipt whose sent message exists by now, apply that message's parked receipts."""
    # one locked IN query for the receipts' own ids instead of one query each: after an outage most receipts of a
    # backlog can be parked before their sends, and each settle re-checks all of them
    load_sent_messages(uow, [(receipt.vendor, receipt.message_id) for receipt in receipts if receipt.parked])
    found: dict[int, SentMessage] = {}
    for receipt in receipts:
        if receipt.parked:
            sent = find_sent_message(uow, receipt)
            if sent is not None:
                found[id(sent)] = sent  # once per sent message, however many of its receipts are here
    return rematch_all(uow, list(found.values()))


def rematch_all(uow: UnitOfWork, sent_messages: list[SentMessage]) -> int:
    """Apply the receipts parked for each of these stored sent messages, loaded for all of them at once."""
    uow.parked = ParkedIndex.load(uow, keys_of(sent_messages))
    return sum(rematch_parked(uow, sent) for sent in sent_messages)


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

"""Reconciliation: match each delivery receipt to its sent message and drive the status forward."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import defer

from core.events import DeliveryReceipt, Envelope, digits_msisdn
from processors.db.chunks import among, in_chunks
from processors.db.models import Receipt, SentMessage
from processors.db.uow import CanonicalId, UnitOfWork
from processors.domain import aggregates, consent, statuses
from processors.domain.delivery import (
    apply_receipt,
    find_sent_message,
    locked,
    rematch_all,
    rematch_receipts,
    stored_sent_messages_awaited,
)


def handle_receipt(envelope: Envelope, uow: UnitOfWork) -> None:
    """Store the receipt as history, then apply it to its sent message, or park it until that arrives."""
    payload = envelope.payload
    assert isinstance(payload, DeliveryReceipt)
    receipt = receipt_row(envelope, payload, uow.canonical_id)
    # Nothing reads a new receipt back within the unit: it is inserted with the batch's others at commit.
    uow.insert_later(receipt)
    if payload.count is not None and payload.recipient is None:
        # Sinch batch summary lines (a count per status, no recipient) describe many messages at once:
        # history only, never a status change, never parked.
        receipt.outcome = statuses.SUMMARY
        return
    if payload.refused_at_send:
        # a send the vendor refused (Mobivate's 403 opt-out answer): no message was sent, so nothing will ever
        # match it; its opt-out is evidence all the same
        receipt.outcome = statuses.REFUSED_AT_SEND
        if payload.recipient_opted_out:
            record_refusal(uow, envelope, payload, None)
        return
    # No autoflush: a sent message changed earlier in the batch comes back from the identity map (or the
    # unit's cache) with its pending changes; they need not reach the database before this lookup.
    with uow.session.no_autoflush:
        sent = find_sent_message(uow, receipt)
    if payload.recipient_opted_out:
        record_refusal(uow, envelope, payload, sent)
    if sent is None:
        receipt.parked = True  # the sent message may not be stored yet; sent_messages re-matches it
        receipt.outcome = statuses.PARKED
        aggregates.record_parked(uow, receipt.vendor, receipt.received_at, +1)
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
    consent.record_vendor_refusal(uow, payload, envelope.id, recipient, sender)


def receipt_row(envelope: Envelope, payload: DeliveryReceipt, canonical_id: CanonicalId) -> Receipt:
    """The history row of a receipt, with the whole event data as raw."""
    return Receipt(
        event_id=envelope.id,
        vendor=payload.vendor,
        message_id=canonical_id(payload.vendor, payload.message_id),
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


def settle_parked(envelopes: list[Envelope], uow: UnitOfWork) -> int:
    """After a batch commits: re-match the receipts it parked whose sent message was committed meanwhile.

    A receipt parked in the same instant its sent message is stored is missed by both processors (each sees
    only the other's state from before). Both re-check after their commit (see settle_sent_messages); the
    later re-check always sees the other's commit, and row versions make sure only one of them applies it.
    """
    event_ids = [e.id for e in envelopes if isinstance(e.payload, DeliveryReceipt)]
    parked: list[Receipt] = []
    for chunk in in_chunks(event_ids):
        # without the raw payload: draining a backlog most of a batch stays parked, and decoding every receipt's
        # JSON was the settle's main cost; the few re-matched are loaded whole by rematch_all
        statement = select(Receipt).options(defer(Receipt.raw))
        statement = statement.where(Receipt.parked, among(uow.session, Receipt.event_id, chunk))
        parked.extend(uow.session.scalars(statement))
    return rematch_receipts(uow, parked)


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
    return rematch_all(uow, list(fresh))



"""Sent messages: store what a sending system handed to a vendor, then re-match receipts parked for it."""

from __future__ import annotations

from sqlalchemy import select

from core.events import Envelope, digits_msisdn
from core.events import SentMessage as SentMessagePayload
from processors.db.models import MessagePart, SentMessage
from processors.db.uow import UnitOfWork
from processors.domain import aggregates
from processors.domain.attribution import attribute_clicks_of, attribute_waiting_clicks, clicks_waiting_for
from processors.domain.delivery import prefetch_sent_messages, rematch_parked, rematch_receipts, sent_message_by_id
from processors.domain.money import currency_code, to_nanos
from processors.domain.parked import ParkedIndex, parked_for, stored_keys

# Fields a later sent-message event for the same (vendor, message id) may correct; status never changes here.
DESCRIPTIVE = ("raw_message_id", "batch_id", "campaign_id", "client_ref", "recipient", "sender", "parts",
               "sent_at", "received_at", "country_iso2", "account", "source_event_id", "expected_price_nanos",
               "expected_currency")


def handle_sent_message(envelope: Envelope, uow: UnitOfWork) -> None:
    """Upsert the sent message by (vendor, normalized id); apply receipts and attribute clicks that came first."""
    payload = envelope.payload
    assert isinstance(payload, SentMessagePayload)
    values = {
        "vendor": payload.vendor,
        "message_id": uow.canonical_id(payload.vendor, payload.message_id),
        "raw_message_id": payload.message_id,
        "batch_id": payload.batch_id,
        "campaign_id": payload.campaign_id,
        "client_ref": payload.client_ref,
        "recipient": digits_msisdn(payload.recipient),
        "sender": digits_msisdn(payload.sender),
        "parts": max(payload.parts, len(payload.part_ids)),
        "sent_at": payload.sent_at,
        "received_at": payload.received_at,
        "country_iso2": payload.country_iso2.upper() if payload.country_iso2 else None,
        "account": payload.account,
        "source_event_id": envelope.id,
        "expected_price_nanos": to_nanos(payload.expected_price),
        "expected_currency": currency_code(payload.currency),
    }
    session = uow.session
    key = (values["vendor"], values["message_id"])
    sent = sent_message_by_id(session, *key, uow.sent_messages, lock=True)
    if sent is None:
        sent = SentMessage(id=uow.new_id(SentMessage), **values, status="submitted", conflict=False)
        session.add(sent)  # inserted with the batch's other new sends at the next flush; nothing needs its id yet
        uow.sent_messages[key] = sent  # a later event of this batch for the same message updates this row
        aggregates.record_message(uow, None, sent)
    else:
        before = aggregates.before_change(sent)
        for name in DESCRIPTIVE:
            setattr(sent, name, values[name])
        aggregates.record_message(uow, before, sent)
    register_parts(uow, sent, payload.part_ids)
    rematch_parked(uow, sent)
    attribute_clicks_of(uow, sent)


def register_parts(uow: UnitOfWork, sent: SentMessage, part_ids: tuple[str, ...]) -> None:
    """Remember each part's own id (Vonage gives every part one) so its receipts reconcile to this message."""
    if len(part_ids) < 2:
        return  # a single part is the message itself
    session = uow.session
    session.flush()  # the parts point at the sent message's id
    known = set(session.scalars(select(MessagePart.message_id).where(MessagePart.sent_message_id == sent.id)))
    for index, part_id in enumerate(part_ids, start=1):
        normalized = uow.canonical_id(sent.vendor, part_id)
        if normalized not in known:
            known.add(normalized)
            session.add(MessagePart(sent_message_id=sent.id, vendor=sent.vendor, message_id=normalized,
                                    part_index=index, status="submitted"))
            uow.part_owners[(sent.vendor, normalized)] = sent.id
    session.flush()  # parked receipts of the parts are looked up next


def settle_sent_messages(envelopes: list[Envelope], uow: UnitOfWork) -> int:
    """After a batch commits: re-match receipts parked, and clicks stored, for its sent messages meanwhile.

    The other half of reconciliation's settle_parked (and of clicks' settle_clicks); the queries use the partial
    `parked` indexes and the clicks' message-id index, and almost always answer nothing.
    """
    stored = stored_keys(envelopes, uow.canonical_id)
    applied = rematch_receipts(uow, parked_for(uow, stored))
    return applied + attribute_waiting_clicks(uow, clicks_waiting_for(uow, stored))


def prefetch_sends(envelopes: list[Envelope], uow: UnitOfWork) -> None:
    """Load, for a batch of sends, their stored rows (locked), the receipts parked for them and which have clicks
    waiting: handling each send then asks the database nothing, and the new rows go in one INSERT at commit."""
    prefetch_sent_messages(envelopes, uow)
    uow.reserve_ids(SentMessage, sum(sent is None for sent in uow.sent_messages.values()))
    keys = stored_keys(envelopes, uow.canonical_id)
    uow.parked = ParkedIndex.load(uow, keys)
    uow.waiting_clicks = set(clicks_waiting_for(uow, keys))


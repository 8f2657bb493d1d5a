"""Sent messages: store what a sending system handed to a vendor, then re-match receipts parked for it."""

from __future__ import annotations

from sqlalchemy import select, tuple_

from core.events import Envelope, digits_msisdn
from core.events import SentMessage as SentMessagePayload
from processors.db.chunks import in_chunks
from processors.db.models import Click, MessagePart, Receipt, SentMessage
from processors.db.uow import CanonicalId, UnitOfWork
from processors.domain import aggregates
from processors.domain.attribution import attribute_earlier_clicks, attribute_waiting_clicks
from processors.domain.delivery import rematch_parked, rematch_receipts, sent_message_by_id
from processors.domain.money import currency_code, to_nanos

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
        sent = SentMessage(**values, status="submitted", conflict=False)
        session.add(sent)
        session.flush()  # the id is needed to attach parked receipts
        uow.sent_messages[key] = sent  # a later event of this batch for the same message updates this row
        aggregates.record_message(uow, None, sent)
    else:
        before = aggregates.before_change(sent)
        for name in DESCRIPTIVE:
            setattr(sent, name, values[name])
        aggregates.record_message(uow, before, sent)
    register_parts(uow, sent, payload.part_ids)
    rematch_parked(uow, sent)
    attribute_earlier_clicks(uow, sent)


def register_parts(uow: UnitOfWork, sent: SentMessage, part_ids: tuple[str, ...]) -> None:
    """Remember each part's own id (Vonage gives every part one) so its receipts reconcile to this message."""
    if len(part_ids) < 2:
        return  # a single part is the message itself
    session = uow.session
    known = set(session.scalars(select(MessagePart.message_id).where(MessagePart.sent_message_id == sent.id)))
    for index, part_id in enumerate(part_ids, start=1):
        normalized = uow.canonical_id(sent.vendor, part_id)
        if normalized not in known:
            known.add(normalized)
            session.add(MessagePart(sent_message_id=sent.id, vendor=sent.vendor, message_id=normalized,
                                    part_index=index, status="submitted"))
    session.flush()  # parked receipts of the parts are looked up next


def settle_sent_messages(envelopes: list[Envelope], uow: UnitOfWork) -> int:
    """After a batch commits: re-match receipts parked, and clicks stored, for its sent messages meanwhile.

    The other half of reconciliation's settle_parked (and of clicks' settle_clicks); the queries use the partial
    `parked` indexes and the clicks' message-id index, and almost always answer nothing.
    """
    stored = stored_keys(envelopes, uow.canonical_id)
    applied = rematch_receipts(uow, parked_for(uow, stored))
    return applied + attribute_waiting_clicks(uow, clicks_waiting_for(uow, stored))


def stored_keys(envelopes: list[Envelope], canonical_id: CanonicalId) -> dict[str, dict[str, set]]:
    """Per vendor, every key a receipt can match the batch's sent messages on: message id, client reference,
    (batch id, recipient)."""
    keys: dict[str, dict[str, set]] = {}
    for envelope in envelopes:
        payload = envelope.payload
        if not isinstance(payload, SentMessagePayload):
            continue
        vendor = keys.setdefault(payload.vendor, {"message_id": set(), "client_ref": set(), "batch": set()})
        vendor["message_id"].add(canonical_id(payload.vendor, payload.message_id))
        vendor["message_id"].update(canonical_id(payload.vendor, part) for part in payload.part_ids)
        if payload.client_ref:
            vendor["client_ref"].add(payload.client_ref)
        if payload.batch_id:
            vendor["batch"].add((payload.batch_id, digits_msisdn(payload.recipient)))
    return keys


def parked_for(uow: UnitOfWork, keys: dict[str, dict[str, set]]) -> list[Receipt]:
    """Receipts still parked under any of these keys, oldest first."""
    found: dict[int, Receipt] = {}
    for vendor, wanted in keys.items():
        by_key = ((Receipt.message_id, wanted["message_id"]), (Receipt.client_ref, wanted["client_ref"]),
                  (tuple_(Receipt.batch_id, Receipt.recipient), wanted["batch"]))
        for column, values in by_key:
            for chunk in in_chunks(values):
                statement = select(Receipt).where(Receipt.parked, Receipt.vendor == vendor, column.in_(chunk))
                found.update((receipt.id, receipt) for receipt in uow.session.scalars(statement))
    return [found[receipt_id] for receipt_id in sorted(found)]


def clicks_waiting_for(uow: UnitOfWork, keys: dict[str, dict[str, set]]) -> list[tuple[str, str]]:
    """(vendor, message id) of unattributed clicks on these sent messages."""
    waiting: set[tuple[str, str]] = set()
    for vendor, wanted in keys.items():
        for chunk in in_chunks(wanted["message_id"]):
            statement = select(Click.message_id).where(
                Click.vendor == vendor, Click.message_id.in_(chunk), Click.sent_message_id.is_(None)
            )
            waiting.update((vendor, message_id) for message_id in uow.session.scalars(statement))
    return sorted(waiting)

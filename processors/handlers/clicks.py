"""Clicks: record each link click, attributed to its sent message and campaign when known."""

from __future__ import annotations

from sqlalchemy import exists, select

from core.events import Envelope, LinkClick, digits_msisdn
from processors.db.chunks import among, in_chunks
from processors.db.models import Click
from processors.db.uow import UnitOfWork
from processors.domain import aggregates
from processors.domain.attribution import attribute_earlier_clicks, attribute_waiting_clicks
from processors.domain.delivery import load_sent_messages, sent_message_by_id, stored_sent_messages_awaited


def handle_click(envelope: Envelope, uow: UnitOfWork) -> None:
    """Store the click; campaign and batch come from the sent message, else from the click itself."""
    payload = envelope.payload
    assert isinstance(payload, LinkClick)
    message_id = uow.canonical_id(payload.vendor, payload.message_id)
    sent = sent_message_by_id(uow.session, payload.vendor, message_id, uow.sent_messages)
    if sent is not None:
        if uow.clicked is None:
            earlier = uow.session.scalar(select(exists().where(Click.sent_message_id == sent.id)))
        else:
            earlier = sent.id in uow.clicked
            uow.clicked.add(sent.id)
        aggregates.record_clicks(uow, sent, 1, first=not earlier)
    uow.session.add(
        Click(
            event_id=envelope.id,
            vendor=payload.vendor,
            message_id=message_id,
            sent_message_id=sent.id if sent else None,
            campaign_id=sent.campaign_id if sent else None,
            batch_id=(sent.batch_id if sent else None) or payload.batch_id,
            recipient=digits_msisdn(payload.recipient) or payload.recipient,
            url=payload.url,
            clicked_at=payload.clicked_at,
            received_at=payload.received_at,
            country=payload.country,
            country_iso2=payload.country_iso2.upper() if payload.country_iso2 else None,
            raw=payload.to_data(),
        )
    )


def prefetch_clicks(envelopes: list[Envelope], uow: UnitOfWork) -> None:
    """Load, for a batch of clicks, their sent messages (not locked: a click changes none) and which of those have a
    click already: handling each click then asks the database nothing, and the clicks go in one INSERT at commit."""
    keys = [(payload.vendor, uow.canonical_id(payload.vendor, payload.message_id))
            for payload in (envelope.payload for envelope in envelopes) if isinstance(payload, LinkClick)]
    load_sent_messages(uow, keys, lock=False)
    ids = {sent.id for sent in uow.sent_messages.values() if sent is not None}
    uow.clicked = set()
    for chunk in in_chunks(ids):
        statement = select(Click.sent_message_id).where(among(uow.session, Click.sent_message_id, chunk)).distinct()
        uow.clicked.update(uow.session.scalars(statement))


def sweep_unattributed_clicks(uow: UnitOfWork) -> int:
    """Attribute clicks whose sent message exists by now; returns how many sent messages were swept.

    Same race as parked receipts: a click consumed while its sent message was being committed by the
    sent-messages processor is missed by both sides; this periodic sweep attributes it.
    """
    sent_messages = stored_sent_messages_awaited(uow.session, Click, Click.sent_message_id.is_(None))
    for sent in sent_messages:
        attribute_earlier_clicks(uow, sent)
    return len(sent_messages)


def settle_clicks(envelopes: list[Envelope], uow: UnitOfWork) -> int:
    """After a batch commits: attribute its clicks whose sent message was committed while the batch ran.

    The same two-sided re-check as parked receipts (sent-messages' settle looks for such clicks too); an
    attribution is one idempotent UPDATE, so both sides doing it is harmless.
    """
    event_ids = [e.id for e in envelopes if isinstance(e.payload, LinkClick)]
    keys: set[tuple[str, str]] = set()
    for chunk in in_chunks(event_ids):
        statement = select(Click.vendor, Click.message_id).where(
            Click.sent_message_id.is_(None), among(uow.session, Click.event_id, chunk)
        )
        keys.update(tuple(row) for row in uow.session.execute(statement))
    return attribute_waiting_clicks(uow, sorted(keys))

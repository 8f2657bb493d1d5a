"""Sent messages: store what a sending system handed to a vendor, then re-match receipts parked for it."""

from __future__ import annotations

from processors.db.models import SentMessage
from processors.db.uow import UnitOfWork
from processors.handlers.clicks import attribute_earlier_clicks
from processors.handlers.reconciliation import rematch_parked, sent_message_by_id
from receiver.contract import Envelope, digits_msisdn, normalize_message_id
from receiver.contract import SentMessage as SentMessagePayload

# Fields a later sent-message event for the same (vendor, message id) may correct; status never changes here.
DESCRIPTIVE = ("raw_message_id", "batch_id", "campaign_id", "client_ref", "recipient", "sender", "parts",
               "sent_at", "received_at", "country_iso2", "account", "source_event_id")


def handle_sent_message(envelope: Envelope, uow: UnitOfWork) -> None:
    """Upsert the sent message by (vendor, normalized id); apply receipts and attribute clicks that came first."""
    payload = envelope.payload
    assert isinstance(payload, SentMessagePayload)
    values = {
        "vendor": payload.vendor,
        "message_id": normalize_message_id(payload.vendor, payload.message_id),
        "raw_message_id": payload.message_id,
        "batch_id": payload.batch_id,
        "campaign_id": payload.campaign_id,
        "client_ref": payload.client_ref,
        "recipient": digits_msisdn(payload.recipient),
        "sender": digits_msisdn(payload.sender),
        "parts": payload.parts,
        "sent_at": payload.sent_at,
        "received_at": payload.received_at,
        "country_iso2": payload.country_iso2.upper() if payload.country_iso2 else None,
        "account": payload.account,
        "source_event_id": envelope.id,
    }
    session = uow.session
    sent = sent_message_by_id(session, values["vendor"], values["message_id"])
    if sent is None:
        sent = SentMessage(**values, status="submitted", conflict=False)
        session.add(sent)
        session.flush()  # the id is needed to attach parked receipts
    else:
        for name in DESCRIPTIVE:
            setattr(sent, name, values[name])
    rematch_parked(uow, sent)
    attribute_earlier_clicks(uow, sent)

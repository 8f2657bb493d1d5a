"""Sent messages: store what a sending system handed to a vendor, then re-match receipts parked for it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, tuple_

from processors.db.models import Click, Receipt, SentMessage
from processors.db.uow import UnitOfWork
from processors.handlers.clicks import attribute_earlier_clicks, attribute_waiting_clicks
from processors.handlers.reconciliation import CHUNK, rematch_parked, rematch_receipts, sent_message_by_id
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
    sent = sent_message_by_id(session, values["vendor"], values["message_id"], lock=True)
    if sent is None:
        sent = SentMessage(**values, status="submitted", conflict=False)
        session.add(sent)
        session.flush()  # the id is needed to attach parked receipts
    else:
        for name in DESCRIPTIVE:
            setattr(sent, name, values[name])
    rematch_parked(uow, sent)
    attribute_earlier_clicks(uow, sent)


def settle_sent_messages(envelopes: list[Envelope], uow: UnitOfWork) -> int:
    """After a batch commits: re-match receipts parked, and clicks stored, for its sent messages meanwhile.

    The other half of reconciliation's settle_parked (and of clicks' settle_clicks): by every key a parked
    receipt can match on, in a few IN queries per vendor on the partial `parked` indexes, and by message id
    for unattributed clicks; almost always they answer nothing.
    """
    keys: dict[str, dict[str, set]] = {}
    for envelope in envelopes:
        payload = envelope.payload
        if not isinstance(payload, SentMessagePayload):
            continue
        vendor = keys.setdefault(payload.vendor, {"message_id": set(), "client_ref": set(), "batch": set()})
        vendor["message_id"].add(normalize_message_id(payload.vendor, payload.message_id))
        if payload.client_ref:
            vendor["client_ref"].add(payload.client_ref)
        if payload.batch_id:
            vendor["batch"].add((payload.batch_id, digits_msisdn(payload.recipient)))
    found: dict[int, Receipt] = {}
    for vendor, wanted in keys.items():
        for column, values in ((Receipt.message_id, wanted["message_id"]), (Receipt.client_ref, wanted["client_ref"]),
                               (tuple_(Receipt.batch_id, Receipt.recipient), wanted["batch"])):
            ordered = sorted(values)
            for start in range(0, len(ordered), CHUNK):
                key: ColumnElement[bool] = column.in_(ordered[start : start + CHUNK])
                statement = select(Receipt).where(Receipt.parked, Receipt.vendor == vendor, key)
                found.update((receipt.id, receipt) for receipt in uow.session.scalars(statement))
    applied = rematch_receipts(uow, sorted(found.values(), key=lambda receipt: receipt.id))
    clicked: set[tuple[str, str]] = set()
    for vendor, wanted in keys.items():
        ordered = sorted(wanted["message_id"])
        for start in range(0, len(ordered), CHUNK):
            waiting = select(Click.message_id).where(
                Click.vendor == vendor, Click.message_id.in_(ordered[start : start + CHUNK]),
                Click.sent_message_id.is_(None),
            )
            clicked.update((vendor, message_id) for message_id in uow.session.scalars(waiting))
    return applied + attribute_waiting_clicks(uow, sorted(clicked))

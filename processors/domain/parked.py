"""Parked receipts by the keys of a batch's sends: loaded in a few queries, so storing each send asks nothing."""

from __future__ import annotations

from sqlalchemy import select, tuple_

from core.events import Envelope, digits_msisdn
from core.events import SentMessage as SentMessagePayload
from processors.db.chunks import among, in_chunks
from processors.db.models import Receipt, SentMessage
from processors.db.uow import CanonicalId, UnitOfWork

# per vendor, per kind of key ("message_id", "client_ref", "batch"), the values
Keys = dict[str, dict[str, set]]


def stored_keys(envelopes: list[Envelope], canonical_id: CanonicalId) -> Keys:
    """Per vendor, every key a receipt can match the batch's sent messages on: message id (and parts' ids), client
    reference, (batch id, recipient)."""
    keys: Keys = {}
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


def keys_of(sent_messages: list[SentMessage]) -> Keys:
    """stored_keys of stored sent messages (their parts' ids aside: ParkedIndex leaves multipart ones to a query)."""
    keys: Keys = {}
    for sent in sent_messages:
        vendor = keys.setdefault(sent.vendor, {"message_id": set(), "client_ref": set(), "batch": set()})
        vendor["message_id"].add(sent.message_id)
        if sent.client_ref:
            vendor["client_ref"].add(sent.client_ref)
        if sent.batch_id:
            vendor["batch"].add((sent.batch_id, sent.recipient))
    return keys


def parked_for(uow: UnitOfWork, keys: Keys) -> list[Receipt]:
    """Receipts still parked under any of these keys, oldest first (one indexed query per kind of key and 500)."""
    found: dict[int, Receipt] = {}
    for vendor, wanted in keys.items():
        by_key = ((Receipt.message_id, wanted["message_id"]), (Receipt.client_ref, wanted["client_ref"]),
                  (tuple_(Receipt.batch_id, Receipt.recipient), wanted["batch"]))
        for column, values in by_key:
            for chunk in in_chunks(values):
                # a (batch, recipient) pair has no array form: those keep their IN list
                key = column.in_(chunk) if wanted["batch"] is values else among(uow.session, column, chunk)
                statement = select(Receipt).where(Receipt.parked, Receipt.vendor == vendor, key)
                found.update((receipt.id, receipt) for receipt in uow.session.scalars(statement))
    return [found[receipt_id] for receipt_id in sorted(found)]


class ParkedIndex:
    """The receipts parked under a batch's keys when it started, by key, for parked_receipts_for."""

    def __init__(self, keys: Keys, receipts: list[Receipt]) -> None:
        self.keys = keys
        self.by_key: dict[tuple, list[Receipt]] = {}
        for receipt in receipts:
            for key in ((receipt.vendor, "message_id", receipt.message_id),
                        (receipt.vendor, "client_ref", receipt.client_ref),
                        (receipt.vendor, "batch", (receipt.batch_id, receipt.recipient))):
                self.by_key.setdefault(key, []).append(receipt)

    def receipts_for(self, sent: SentMessage) -> list[Receipt] | None:
        """The receipts loaded under any key of this sent message (some may have been applied since), or None when
        the batch's keys do not cover it (a multipart message's parts are registered in the database)."""
        wanted = self.keys.get(sent.vendor)
        if wanted is None or sent.parts > 1 or sent.message_id not in wanted["message_id"]:
            return None
        if sent.client_ref and sent.client_ref not in wanted["client_ref"]:
            return None
        if sent.batch_id and (sent.batch_id, sent.recipient) not in wanted["batch"]:
            return None
        found = list(self.by_key.get((sent.vendor, "message_id", sent.message_id), ()))
        if sent.client_ref:
            found += self.by_key.get((sent.vendor, "client_ref", sent.client_ref), ())
        if sent.batch_id:
            found += self.by_key.get((sent.vendor, "batch", (sent.batch_id, sent.recipient)), ())
        return found


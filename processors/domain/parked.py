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


def match_keys(message_id: str, client_ref: str | None, batch_id: str | None, recipient: str | None) -> list[tuple]:
    """The (kind, value) keys a parked receipt and a sent message can share: the id, the client reference, the
    batch and recipient (the last two only when given)."""
    keys: list[tuple] = [("message_id", message_id)]
    if client_ref:
        keys.append(("client_ref", client_ref))
    if batch_id:
        keys.append(("batch", (batch_id, recipient)))
    return keys


def _add(keys: Keys, vendor: str, found: list[tuple]) -> None:
    """Add (kind, value) keys of a vendor."""
    wanted = keys.setdefault(vendor, {"message_id": set(), "client_ref": set(), "batch": set()})
    for kind, value in found:
        wanted[kind].add(value)


def stored_keys(envelopes: list[Envelope], canonical_id: CanonicalId) -> Keys:
    """Per vendor, every key a receipt can match the batch's sent messages on: message id (and parts' ids), client
    reference, (batch id, recipient)."""
    keys: Keys = {}
    for envelope in envelopes:
        payload = envelope.payload
        if isinstance(payload, SentMessagePayload):
            vendor = payload.vendor
            _add(keys, vendor, match_keys(canonical_id(vendor, payload.message_id), payload.client_ref,
                                          payload.batch_id, digits_msisdn(payload.recipient)))
            _add(keys, vendor, [("message_id", canonical_id(vendor, part)) for part in payload.part_ids])
    return keys


def keys_of(sent_messages: list[SentMessage]) -> Keys:
    """stored_keys of stored sent messages (their parts' ids aside: ParkedIndex leaves multipart ones to a query)."""
    keys: Keys = {}
    for sent in sent_messages:
        _add(keys, sent.vendor, match_keys(sent.message_id, sent.client_ref, sent.batch_id, sent.recipient))
    return keys


def parked_for(uow: UnitOfWork, keys: Keys) -> list[Receipt]:
    """Receipts still parked under any of these keys, oldest first (one indexed query per kind of key and 500)."""
    columns = {"message_id": Receipt.message_id, "client_ref": Receipt.client_ref}
    found: dict[int, Receipt] = {}
    for vendor, wanted in keys.items():
        for kind, values in wanted.items():
            for chunk in in_chunks(values):
                if kind == "batch":  # a (batch, recipient) pair has no array form: it keeps its IN list
                    key = tuple_(Receipt.batch_id, Receipt.recipient).in_(chunk)
                else:
                    key = among(uow.session, columns[kind], chunk)
                statement = select(Receipt).where(Receipt.parked, Receipt.vendor == vendor, key)
                found.update((receipt.id, receipt) for receipt in uow.session.scalars(statement))
    return [found[receipt_id] for receipt_id in sorted(found)]


class ParkedIndex:
    """The receipts parked under a batch's keys when it started, by key, for parked_receipts_for."""

    def __init__(self, keys: Keys, receipts: list[Receipt]) -> None:
        self.keys = keys
        self.by_key: dict[tuple, list[Receipt]] = {}
        for receipt in receipts:
            for kind, value in match_keys(receipt.message_id, receipt.client_ref, receipt.batch_id, receipt.recipient):
                self.by_key.setdefault((receipt.vendor, kind, value), []).append(receipt)

    @classmethod
    def load(cls, uow: UnitOfWork, keys: Keys) -> ParkedIndex:
        """The receipts parked under these keys, read now and indexed."""
        return cls(keys, parked_for(uow, keys))

    def receipts_for(self, sent: SentMessage) -> list[Receipt] | None:
        """The receipts loaded under any key of this sent message (some may have been applied since), or None when
        the batch's keys do not cover it (a multipart message's parts are registered in the database)."""
        wanted = self.keys.get(sent.vendor)
        found = match_keys(sent.message_id, sent.client_ref, sent.batch_id, sent.recipient)
        if wanted is None or sent.parts > 1 or any(value not in wanted[kind] for kind, value in found):
            return None
        return [receipt for kind, value in found for receipt in self.by_key.get((sent.vendor, kind, value), ())]

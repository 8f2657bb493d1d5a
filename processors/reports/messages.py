"""Message status lookup: a sent message's current status, receipt history, conflicts and clicks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, or_, select

from processors.db.models import Click, MessagePart, Receipt, SentMessage
from processors.domain.money import from_nanos
from processors.reports.reconciliation import iso


def message_status(connection: Connection, vendor: str, normalized: str) -> dict[str, Any] | None:
    """Everything we know about one (vendor, canonical message id); None when neither a send nor a receipt exists.

    The caller spells the id as the vendor's rule does (`receiver.vendors.canonical_message_id`)."""
    sent = connection.execute(
        select(SentMessage).where(SentMessage.vendor == vendor, SentMessage.message_id == normalized)
    ).first()
    receipt_match = Receipt.sent_message_id == sent.id if sent else None
    by_id = (Receipt.vendor == vendor) & (Receipt.message_id == normalized)
    receipts = connection.execute(
        select(Receipt)
        .where(or_(receipt_match, by_id) if receipt_match is not None else by_id)
        .order_by(Receipt.received_at, Receipt.id)
    ).all()
    if sent is None and not receipts:
        return None
    click_match = (Click.vendor == vendor) & (Click.message_id == normalized)
    if sent is not None:
        click_match = or_(click_match, Click.sent_message_id == sent.id)
    clicks = connection.execute(select(Click).where(click_match).order_by(Click.clicked_at, Click.id)).all()
    history = [_receipt(r) for r in receipts]
    return {
        "vendor": vendor,
        "message_id": normalized,
        "matched": sent is not None,
        "sent_message": _sent(sent, _parts(connection, sent.id)) if sent else None,
        "status": sent.status if sent else None,
        "conflict": bool(sent.conflict) if sent else False,
        "receipts": history,
        "conflicts": [entry for entry in history if entry["outcome"] == "conflict"],
        "clicks": [
            {"url": c.url, "clicked_at": iso(c.clicked_at), "received_at": iso(c.received_at),
             "country": c.country_iso2 or c.country, "event_id": c.event_id}
            for c in clicks
        ],
    }


def _parts(connection: Connection, sent_message_id: int) -> list[dict[str, Any]]:
    """The registered parts of a multipart message, in order."""
    parts = connection.execute(
        select(MessagePart).where(MessagePart.sent_message_id == sent_message_id).order_by(MessagePart.part_index)
    ).all()
    return [{"part": p.part_index, "message_id": p.message_id, "status": p.status, "price": _money(p.price_nanos),
             "currency": p.price_currency} for p in parts]


def _money(nanos: int | None) -> str | None:
    """A stored amount as a decimal string."""
    value = from_nanos(nanos)
    return None if value is None else format(value, "f")


def _sent(sent, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The stored sent message, minus internals."""
    return {
        "price": _money(sent.price_nanos), "currency": sent.price_currency,
        "expected_price": _money(sent.expected_price_nanos), "expected_currency": sent.expected_currency,
        "part_statuses": parts,
        "raw_message_id": sent.raw_message_id, "batch_id": sent.batch_id, "campaign": sent.campaign_id,
        "client_ref": sent.client_ref, "recipient": sent.recipient, "sender": sent.sender, "parts": sent.parts,
        "country": sent.country_iso2, "account": sent.account, "sent_at": iso(sent.sent_at),
        "received_at": iso(sent.received_at), "status": sent.status,
        "status_changed_at": iso(sent.status_changed_at), "final_at": iso(sent.final_at),
        "first_receipt_received_at": iso(sent.first_receipt_received_at),
        "delivered_at": iso(sent.delivered_at), "conflict": bool(sent.conflict),
    }


def _receipt(receipt) -> dict[str, Any]:
    """One receipt of the history with what reconciliation did with it."""
    return {
        "event_id": receipt.event_id, "status": receipt.status, "vendor_status": receipt.vendor_status,
        "vendor_code": receipt.vendor_code, "occurred_at": iso(receipt.occurred_at),
        "received_at": iso(receipt.received_at), "outcome": receipt.outcome,
        "previous_status": receipt.previous_status, "parked": bool(receipt.parked),
    }

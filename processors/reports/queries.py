"""Read-side conditions shared by reports, metrics and sweeps: what counts as missing and as unmatched."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, not_, or_, select
from sqlalchemy.orm import Session

from core.events import FINAL_STATUSES, utc_now
from core.settings import Settings
from processors.db.models import Receipt, SentMessage


def unmatched_receipts_condition(settings: Settings, now: datetime | None = None) -> ColumnElement[bool]:
    """Receipts parked longer than `unmatched_receipt_hours`: the report's 'unmatched receipts'."""
    cutoff = (now or utc_now()) - timedelta(hours=settings.unmatched_receipt_hours)
    return and_(Receipt.parked, Receipt.received_at < cutoff)



def count_unmatched_receipts(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """How many receipts are still parked after `unmatched_receipt_hours`."""
    statement = select(func.count()).select_from(Receipt).where(unmatched_receipts_condition(settings, now))
    return session.scalar(statement) or 0



def missing_receipts_condition(settings: Settings, now: datetime | None = None) -> ColumnElement[bool]:
    """Sent messages with no final status after `missing_hours_for(vendor)` (per-vendor overrides apply)."""
    now = now or utc_now()
    not_final = SentMessage.status.not_in(sorted(FINAL_STATUSES))
    overridden = {name: settings.missing_hours_for(name) for name in settings.vendors}
    default_cutoff = now - timedelta(hours=settings.missing_receipt_hours)
    clauses = [
        and_(SentMessage.vendor == vendor, SentMessage.sent_at < now - timedelta(hours=hours))
        for vendor, hours in overridden.items()
    ]
    others = SentMessage.sent_at < default_cutoff
    if overridden:
        others = and_(not_(SentMessage.vendor.in_(sorted(overridden))), others)
    return and_(not_final, or_(others, *clauses))



def count_missing_receipts(
    session: Session, settings: Settings, now: datetime | None = None
) -> dict[str, int]:
    """Missing receipts per vendor (sent messages still without a final status past the vendor's age)."""
    statement = (
        select(SentMessage.vendor, func.count())
        .where(missing_receipts_condition(settings, now))
        .group_by(SentMessage.vendor)
    )
    return {vendor: count for vendor, count in session.execute(statement)}

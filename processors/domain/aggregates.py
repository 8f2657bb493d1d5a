"""Report aggregates: what one sent message, parked receipt, click or consent change adds to the report's counts.

Every change is a delta: the message's contribution before the change comes off, the one after goes on (a status
move is -1 old status, +1 new), so duplicates, conflicts and ignored older receipts, which change nothing, add
nothing. The same functions compute the rebuild from the rows, so rebuilt and incremental counts agree.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import func, select

from processors.db import aggregate_deltas
from processors.db.models import (
    Click,
    ConsentAggregate,
    DeliveryTimeAggregate,
    DeliveryTimeRollup,
    ParkedReceiptAggregate,
    SentAggregate,
)
from processors.db.uow import UnitOfWork

# Time to delivery in fine log-scale buckets: bucket k ≥ 1 holds [MIN·γ^(k-1), MIN·γ^k) seconds and stands for
# the value 2·MIN·γ^k/(γ+1), which is within (γ-1)/(γ+1) = RELATIVE_ERROR of anything in the bucket; bucket 0
# holds delays under a millisecond (the report rounds to milliseconds) and stands for 0.
RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
MIN_SECONDS = 0.001
# The report's coarse histogram, kept exactly: (exclusive upper bound in seconds, column); the last is open.
COARSE = ((10, "ttd_lt_10s"), (30, "ttd_lt_30s"), (60, "ttd_lt_1m"), (300, "ttd_lt_5m"), (900, "ttd_lt_15m"),
          (3600, "ttd_lt_1h"), (21600, "ttd_lt_6h"), (86400, "ttd_lt_24h"), (None, "ttd_ge_24h"))


class Contribution(NamedTuple):
    """One sent message's share of its aggregate row, and its fine delivery-time bucket (None if not delivered)."""

    key: tuple[str, str, str, str, str]  # day, vendor, sender, campaign, country ("" for none)
    counts: dict[str, int]
    bucket: int | None


def day_of(at: datetime) -> str:
    """The UTC day of a time, as the report writes it (YYYY-MM-DD)."""
    if at.tzinfo is not None and at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.date().isoformat()  # a fifth of strftime's time, on every aggregate change


def delivery_seconds(received_at: datetime | None, delivered_at: datetime | None) -> float | None:
    """Seconds from our registration of the send to the delivered receipt, to the millisecond, never negative."""
    if received_at is None or delivered_at is None:
        return None
    # A receipt parked before its sent message was registered can precede it: count that as instant.
    return max(round((delivered_at - received_at).total_seconds(), 3), 0.0)


def delivery_bucket(seconds: float) -> int:
    """The fine bucket of a delay."""
    if seconds < MIN_SECONDS:
        return 0
    return int(math.floor(math.log(seconds / MIN_SECONDS) / math.log(GAMMA))) + 1


def bucket_value(bucket: int) -> float:
    """The delay a fine bucket stands for."""
    if bucket == 0:
        return 0.0
    return 2 * MIN_SECONDS * GAMMA**bucket / (GAMMA + 1)


def coarse_column(seconds: float) -> str:
    """The report histogram's column of a delay."""
    return next(column for upper, column in COARSE if upper is None or seconds < upper)


def message_key(sent) -> tuple[str, str, str, str, str]:
    """The aggregate row of a sent message: day of sent_at, vendor, sender, campaign, country ("" for none)."""
    return day_of(sent.sent_at), sent.vendor, sent.sender or "", sent.campaign_id or "", sent.country_iso2 or ""


def contribution(sent) -> Contribution:
    """What a sent message (an ORM row or a result row with the same attribute names) adds to the aggregates."""
    key = message_key(sent)
    counts = {"sent": 1, sent.status: 1, "conflicts": int(bool(sent.conflict)), "parts": sent.parts or 0}
    seconds = delivery_seconds(sent.received_at, sent.delivered_at)
    bucket = None
    if seconds is not None:
        counts[coarse_column(seconds)] = 1
        bucket = delivery_bucket(seconds)
    return Contribution(key, counts, bucket)


def before_change(sent) -> Contribution | None:
    """A sent message's share before a change, for record_message (None while aggregates are switched off)."""
    return contribution(sent) if aggregate_deltas.ENABLED else None


def add_contribution(deltas: aggregate_deltas.AggregateDeltas, share: Contribution, sign: int = 1) -> None:
    """Add (or, with sign -1, take off) one message's share."""
    deltas.add(SentAggregate, share.key, share.counts, sign)
    add_bucket(deltas, share, sign)


def add_bucket(deltas: aggregate_deltas.AggregateDeltas, share: Contribution, sign: int) -> None:
    """Add (or take off) the message's delivery-time bucket, if it was delivered."""
    if share.bucket is not None:
        deltas.add(DeliveryTimeAggregate, (*share.key, share.bucket), {"messages": 1}, sign)
        deltas.add(DeliveryTimeRollup, (*share.key[:2], share.bucket), {"messages": 1}, sign)


def record_message(uow: UnitOfWork, before: Contribution | None, sent) -> None:
    """A sent message was stored (before is None) or changed: move its share from `before` to what it is now."""
    if not aggregate_deltas.ENABLED:
        return
    after = contribution(sent)
    if before is None:
        add_contribution(uow.aggregates, after)
        return
    if before.key == after.key:
        # the usual change (a status moved): only the counts that differ, in one step (add skips the zeros)
        moved = dict.fromkeys(before.counts.keys() | after.counts.keys(), 0)
        for name, value in after.counts.items():
            moved[name] += value
        for name, value in before.counts.items():
            moved[name] -= value
        uow.aggregates.add(SentAggregate, after.key, moved)
        if before.bucket != after.bucket:
            add_bucket(uow.aggregates, before, -1)
            add_bucket(uow.aggregates, after, 1)
        return
    add_contribution(uow.aggregates, before, -1)
    if sent.id is not None:
        # a corrected send (other day, sender, campaign or country) takes its clicks along
        clicks = uow.session.scalar(select(func.count()).where(Click.sent_message_id == sent.id)) or 0
        moved_clicks = {"clicks": clicks, "clicked_messages": int(clicks > 0)}
        uow.aggregates.add(SentAggregate, before.key, moved_clicks, -1)
        uow.aggregates.add(SentAggregate, after.key, moved_clicks)
    add_contribution(uow.aggregates, after)


def record_clicks(uow: UnitOfWork, sent, clicks: int, first: bool) -> None:
    """`clicks` clicks were attributed to a sent message; `first` when it had none before."""
    if aggregate_deltas.ENABLED and clicks:
        key = contribution(sent).key
        uow.aggregates.add(SentAggregate, key, {"clicks": clicks, "clicked_messages": int(first)})


def record_parked(uow: UnitOfWork, vendor: str, received_at: datetime, sign: int) -> None:
    """A receipt was parked (+1) or matched after being parked (-1)."""
    if aggregate_deltas.ENABLED:
        uow.aggregates.add(ParkedReceiptAggregate, (day_of(received_at), vendor), {"parked": 1}, sign)


def record_consent_change(uow: UnitOfWork, vendor: str, sender: str | None, received_at: datetime,
                          action: str) -> None:
    """A subscriber's consent changed (an opt-out after consent, an opt-in after an opt-out)."""
    name = {"opt_out": "opt_outs", "opt_in": "opt_ins"}.get(action)
    if aggregate_deltas.ENABLED and name:
        uow.aggregates.add(ConsentAggregate, (day_of(received_at), vendor, sender or ""), {name: 1})

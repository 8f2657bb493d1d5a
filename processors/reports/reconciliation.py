"""The reconciliation report: what was sent, delivered, missing and unmatched, read from the report aggregates.

Whole days come from the aggregate tables the processors keep (processors/domain/aggregates.py), the part days
at either end of a range from the rows (indexed by time), so a report costs the number of groups, not of messages.
Missing and unmatched depend on `now`: a day wholly older than its vendor's age counts all its messages still
in flight (all its parked receipts), a younger day none, and only the one day the age falls into is counted from
the rows, with the time indexes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from sqlalchemy import Connection, and_, func, select

from core.settings import Settings
from processors.db.aggregate_deltas import AggregateDeltas
from processors.db.models import (
    ConsentAggregate,
    DeliveryTimeAggregate,
    DeliveryTimeRollup,
    ParkedReceiptAggregate,
    Receipt,
    SentAggregate,
    SentMessage,
)
from processors.domain.aggregates import COARSE, bucket_value, message_key
from processors.reports import aggregates
from processors.reports.params import DIMENSIONS
from processors.reports.queries import missing_receipts_condition, unmatched_receipts_condition

FINAL = ("delivered", "failed", "expired", "rejected")
IN_FLIGHT = ("submitted", "pending")
NOT_FINAL = (*IN_FLIGHT, "unknown")
PERCENTILES = (0.5, 0.95, 0.99)
COUNTS = (
    "sent", "delivered", "failed", "expired", "rejected", "unknown", "pending", "missing", "unmatched",
    "conflicts", "final",
)
METRICS = (
    *COUNTS, "delivery_rate", "time_to_delivery_p50_seconds", "time_to_delivery_p95_seconds",
    "time_to_delivery_p99_seconds", "clicks", "clicked_messages", "click_through_rate", "opt_outs", "opt_ins",
)
# Time-to-delivery histogram buckets: (label, upper bound in seconds, exclusive); the last is open.
BUCKETS = (
    ("<10s", 10), ("10-30s", 30), ("30s-1m", 60), ("1-5m", 300), ("5-15m", 900), ("15m-1h", 3600),
    ("1-6h", 21600), ("6-24h", 86400), (">=24h", None),
)
# Unmatched receipts only know their vendor and receive day; opt-outs their vendor, day and our number.
UNMATCHED_DIMENSIONS = {"vendor", "day"}
OPT_OUT_DIMENSIONS = {"vendor", "day", "sender"}


@dataclass(frozen=True)
class ReportRequest:
    """What to report on: sent_at in [start, end), grouped by `group_by`, ages measured from `now`."""

    start: datetime
    end: datetime
    now: datetime
    group_by: tuple[str, ...] = ()
    list_limit: int = 1000

    def earlier(self) -> ReportRequest:
        """The same-length range just before this one (the HTML page's "period before"), otherwise the same."""
        span = self.end - self.start
        return ReportRequest(self.start - span, self.start, self.now, self.group_by, self.list_limit)


@dataclass
class Report:
    """A computed report, ready for any formatter."""

    request: ReportRequest
    settings: dict[str, Any]
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
    delivery_rate_by_day: list[dict[str, Any]] = field(default_factory=list)
    time_to_delivery_histogram: list[dict[str, Any]] = field(default_factory=list)
    missing_receipts: dict[str, Any] = field(default_factory=dict)
    unmatched_receipts: dict[str, Any] = field(default_factory=dict)


def build_report(connection: Connection, settings: Settings, request: ReportRequest) -> Report:
    """Fold the aggregates of the range into the requested groups (no pass over message rows but part days)."""
    group = list(request.group_by)
    found = _aggregates_in_range(connection, request)
    missing = _missing_by_key(connection, settings, request, found.changes[SentAggregate])
    rows = _grouped(found.changes[SentAggregate], missing, group)
    # Totals add up the groups' counts; percentiles add up the groups' delivery-time buckets.
    totals = rows.get((), _empty({})) if not group else _summed(rows.values())
    _attach_percentiles(connection, request, found, group, rows, totals)
    _attach_unmatched(connection, settings, request, found.changes[ParkedReceiptAggregate], rows, totals)
    _attach_opt_outs(request, found.changes[ConsentAggregate], rows, totals)
    ordered = [rows[key] for key in sorted(rows, key=_sort_key)]
    for row in [*ordered, totals]:
        _rates(row)
    return Report(
        request=request,
        settings=_settings_summary(settings),
        rows=ordered,
        totals={name: totals[name] for name in METRICS},
        delivery_rate_by_day=_delivery_by_day(found.changes[SentAggregate]),
        time_to_delivery_histogram=_histogram(found.changes[SentAggregate]),
        missing_receipts=_missing_list(connection, settings, request, totals["missing"]),
        unmatched_receipts=_unmatched_list(connection, settings, request, totals["unmatched"]),
    )


def _whole_days(request: ReportRequest) -> tuple[datetime, datetime]:
    """The first midnight at or after the start and the last at or before the end (equal when none fits)."""
    first = request.start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if first < request.start:
        first += timedelta(days=1)
    last = request.end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (first, last) if first < last else (request.end, request.end)


def _aggregates_in_range(connection: Connection, request: ReportRequest) -> AggregateDeltas:
    """Stored aggregates of the whole days in range, plus those of the part days computed from their rows.

    The fine delivery-time buckets of whole days are left to _attach_percentiles, which sums them in SQL.
    """
    first, last = _whole_days(request)
    found = AggregateDeltas()
    if first < last:
        found = aggregates.from_tables(connection, day(first), day(last),
                                       skip=(DeliveryTimeAggregate, DeliveryTimeRollup))
    for start, end in ((request.start, first), (last, request.end)):  # no whole day: first = last = end
        if start < end:
            found.merge(aggregates.from_rows(connection, start, end))
    return found


def day(at: datetime) -> str:
    """YYYY-MM-DD of a UTC time."""
    return at.astimezone(UTC).strftime("%Y-%m-%d")


def _day_bounds(name: str) -> tuple[datetime, datetime]:
    """The UTC midnights that start and end a YYYY-MM-DD day."""
    start = datetime.strptime(name, "%Y-%m-%d").replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def _missing_by_key(connection: Connection, settings: Settings, request: ReportRequest,
                    sent: dict[tuple, Counter]) -> dict[tuple, tuple[int, int]]:
    """Per aggregate key: (missing, of which submitted or pending). Missing depends on `now`, so it is no stored
    count: a day wholly before its vendor's cutoff counts everything not final, a day after it nothing, and the
    one day a cutoff falls into is counted from the rows of [that day, cutoff) with the sent_at index."""
    found: dict[tuple, tuple[int, int]] = {}
    straddled: set[tuple[str, str]] = set()
    for key, counts in sent.items():
        day_name, vendor = key[0], key[1]
        cutoff = request.now - timedelta(hours=settings.missing_hours_for(vendor))
        day_start, day_end = _day_bounds(day_name)
        if day_end <= cutoff:
            found[key] = (sum(counts[name] for name in NOT_FINAL), sum(counts[name] for name in IN_FLIGHT))
        elif day_start < cutoff:
            straddled.add((day_name, vendor))
    for day_name, vendor in sorted(straddled):
        day_start, _ = _day_bounds(day_name)
        cutoff = request.now - timedelta(hours=settings.missing_hours_for(vendor))
        statement = select(
            SentMessage.sent_at, SentMessage.vendor, SentMessage.sender, SentMessage.campaign_id,
            SentMessage.country_iso2, SentMessage.status,
        ).where(
            SentMessage.sent_at >= max(day_start, request.start), SentMessage.sent_at < min(cutoff, request.end),
            SentMessage.vendor == vendor, SentMessage.status.in_(NOT_FINAL),
        )
        for row in connection.execute(statement):
            key = message_key(row)
            total, in_flight = found.get(key, (0, 0))
            found[key] = (total + 1, in_flight + int(row.status in IN_FLIGHT))
    return found


def _dimensions(key: tuple) -> dict[str, Any]:
    """The report dimensions of an aggregate key ("" stored for none)."""
    names = ("day", "vendor", "sender", "campaign", "country")
    return {name: (value if value != "" else None) for name, value in zip(names, key, strict=False)}


def _grouped(sent: dict[tuple, Counter], missing: dict[tuple, tuple[int, int]], group: list[str]):
    """Counts per group key, folded from the aggregate rows (percentiles are attached by _attach_percentiles)."""
    rows: dict[tuple, dict[str, Any]] = {}
    for key, counts in sent.items():
        if not counts["sent"]:
            continue  # every message of the row moved to another (a corrected send)
        dimensions = _dimensions(key)
        group_key = tuple(dimensions[name] for name in group)
        row = rows.setdefault(group_key, _empty({name: dimensions[name] for name in group}))
        overdue, overdue_in_flight = missing.get(key, (0, 0))
        row["sent"] += counts["sent"]
        for name in (*FINAL, "unknown", "conflicts", "clicks", "clicked_messages"):
            row[name] += counts[name]
        row["pending"] += counts["submitted"] + counts["pending"] - overdue_in_flight
        row["missing"] += overdue
    if not group and not rows:
        rows[()] = _empty({})
    return rows


def _attach_percentiles(connection: Connection, request: ReportRequest, found: AggregateDeltas, group: list[str],
                        rows, totals) -> None:
    """Time-to-delivery percentiles per group and of the totals, from the fine buckets (relative error stated in
    processors/domain/aggregates.py), written into the rows."""
    # grouped by vendor and/or day only: the per-day-and-vendor buckets, far fewer rows than per every dimension
    model = DeliveryTimeRollup if set(group) <= {"day", "vendor"} else DeliveryTimeAggregate
    buckets: dict[tuple, Counter] = {}
    for key, counts in found.changes[model].items():  # part days, from the rows
        dimensions = _dimensions(key[:-1])
        buckets.setdefault(tuple(dimensions[name] for name in group), Counter())[key[-1]] += counts["messages"]
    first, last = _whole_days(request)
    if first < last:
        table = model.__table__
        keys = [table.c[name] for name in group]
        statement = (
            select(*keys, table.c.bucket, func.sum(table.c.messages))
            .where(table.c.day >= day(first), table.c.day < day(last))
            .group_by(*keys, table.c.bucket)
        )
        # one row per group and bucket (tens of thousands at 1M messages): each group's key converted once
        counters: dict[tuple, Counter] = {}
        for record in connection.execute(statement).all():  # one fetchall: row by row cost ~5 us each
            counter = counters.get(record[:-2])
            if counter is None:
                group_key = tuple(value if value != "" else None for value in record[:-2])
                counter = counters[record[:-2]] = buckets.setdefault(group_key, Counter())
            counter[record[-2]] += int(record[-1])
    everything: Counter = Counter()
    for group_key, counts in buckets.items():
        everything.update(counts)
        if group_key in rows:
            _write_percentiles(rows[group_key], counts)
    _write_percentiles(totals, everything)


def _write_percentiles(row: dict[str, Any], buckets: Counter) -> None:
    """p50/p95/p99 of a histogram, interpolated between neighbouring ranks as percentile_cont does."""
    ranked = sorted((bucket, count) for bucket, count in buckets.items() if count > 0)
    ends = list(accumulate(count for _, count in ranked))  # ranks below ends[i] fall in bucket i or before
    n = ends[-1] if ends else 0
    if not n:
        return

    def value_at(rank: int) -> float:
        return bucket_value(ranked[bisect_right(ends, rank)][0])

    for fraction in PERCENTILES:
        position = fraction * (n - 1)
        low = int(position)
        high = min(low + 1, n - 1)
        value = value_at(low) + (position - low) * (value_at(high) - value_at(low))
        row[_percentile_name(fraction)] = round(value, 3)


def _summed(rows) -> dict[str, Any]:
    """A totals row: the sum of the groups' counts."""
    totals = _empty({})
    for row in rows:
        for name in ("sent", *FINAL, "unknown", "pending", "missing", "conflicts", "clicks", "clicked_messages"):
            totals[name] += row[name]
    return totals


def _unmatched_by_day(connection: Connection, settings: Settings, request: ReportRequest,
                      parked: dict[tuple, Counter]) -> dict[tuple, int]:
    """Unmatched receipts per (day, vendor) of receipt: parked ones older than unmatched_receipt_hours. Days
    wholly before the cutoff count all their parked receipts; the cutoff's own day is counted from the rows."""
    cutoff = request.now - timedelta(hours=settings.unmatched_receipt_hours)
    found: dict[tuple, int] = {}
    for key, counts in parked.items():
        day_start, day_end = _day_bounds(key[0])
        if day_end <= cutoff and counts["parked"]:
            found[key] = counts["parked"]
        elif day_start < cutoff < day_end:
            statement = select(Receipt.vendor, func.count()).where(
                Receipt.parked, Receipt.received_at >= max(day_start, request.start),
                Receipt.received_at < min(cutoff, request.end), Receipt.vendor == key[1],
            ).group_by(Receipt.vendor)
            for vendor, count in connection.execute(statement):
                found[(key[0], vendor)] = int(count)
    return found


def _attach_unmatched(connection, settings, request, parked, rows, totals) -> None:
    """Parked receipts received in range and older than unmatched_receipt_hours, by vendor/day of receipt."""
    group = list(request.group_by)
    applicable = set(group) <= UNMATCHED_DIMENSIONS
    by_group: Counter = Counter()
    for (day_name, vendor), count in _unmatched_by_day(connection, settings, request, parked).items():
        dimensions = {"day": day_name, "vendor": vendor}
        by_group[tuple(dimensions[name] for name in group) if applicable else ()] += count
    totals["unmatched"] = sum(by_group.values())
    if applicable:
        for key, count in by_group.items():
            if count:
                rows.setdefault(key, _empty(dict(zip(group, key, strict=True))))["unmatched"] = count
        for row in rows.values():
            row["unmatched"] = row["unmatched"] or 0


def _attach_opt_outs(request, consent: dict[tuple, Counter], rows, totals) -> None:
    """Consent changes (STOP after consent, START after a STOP) received in range."""
    group = list(request.group_by)
    applicable = set(group) <= OPT_OUT_DIMENSIONS
    by_group: dict[tuple, Counter] = {}
    for key, counts in consent.items():
        dimensions = _dimensions(key[:2]) | {"sender": key[2] or None}
        group_key = tuple(dimensions[name] for name in group) if applicable else ()
        by_group.setdefault(group_key, Counter()).update(counts)
    totals["opt_outs"] = sum(counts["opt_outs"] for counts in by_group.values())
    totals["opt_ins"] = sum(counts["opt_ins"] for counts in by_group.values())
    if applicable:
        for key, counts in by_group.items():
            if counts["opt_outs"] or counts["opt_ins"]:
                row = rows.setdefault(key, _empty(dict(zip(group, key, strict=True))))
                row["opt_outs"], row["opt_ins"] = counts["opt_outs"], counts["opt_ins"]
        for row in rows.values():
            row["opt_outs"] = row["opt_outs"] or 0
            row["opt_ins"] = row["opt_ins"] or 0
            if row["unmatched"] is None and set(group) <= UNMATCHED_DIMENSIONS:
                row["unmatched"] = 0


def _unmatched_in_range(settings: Settings, request: ReportRequest):
    """Unmatched (old parked) receipts whose receive time is in the report's range."""
    return and_(
        unmatched_receipts_condition(settings, request.now),
        Receipt.received_at >= request.start,
        Receipt.received_at < request.end,
    )


def _delivery_by_day(sent: dict[tuple, Counter]) -> list[dict[str, Any]]:
    """Delivery rate per vendor and day of sending, for the chart."""
    sums: dict[tuple, list[int]] = {}
    for key, counts in sent.items():
        if counts["sent"]:
            totals = sums.setdefault((key[1], key[0]), [0, 0, 0])
            totals[0] += counts["sent"]
            totals[1] += counts["delivered"]
            totals[2] += sum(counts[name] for name in FINAL)
    series = []
    for (vendor, day_name), (sent_count, delivered, final) in sorted(sums.items()):
        rate = round(delivered / final, 4) if final else None
        series.append({"vendor": vendor, "day": day_name, "sent": sent_count, "delivered": delivered,
                       "final": final, "delivery_rate": rate})
    return series


def _histogram(sent: dict[tuple, Counter]) -> list[dict[str, Any]]:
    """Delivered messages per time-to-delivery bucket (exact: the aggregates keep these ranges' counts)."""
    counts = Counter()
    for row in sent.values():
        for _, column in COARSE:
            counts[column] += row[column]
    return [
        {"bucket": label, "upper_seconds": upper, "count": counts[column]}
        for (label, upper), (_, column) in zip(BUCKETS, COARSE, strict=True)
    ]


def _missing_list(connection: Connection, settings: Settings, request: ReportRequest, total: int) -> dict[str, Any]:
    """The first `list_limit` sent messages still without a final status past their vendor's age (the total is
    the aggregates')."""
    condition = and_(
        SentMessage.sent_at >= request.start,
        SentMessage.sent_at < request.end,
        missing_receipts_condition(settings, request.now),
    )
    statement = (
        select(
            SentMessage.vendor, SentMessage.message_id, SentMessage.raw_message_id, SentMessage.status,
            SentMessage.sent_at, SentMessage.sender, SentMessage.campaign_id, SentMessage.country_iso2,
            SentMessage.client_ref,
        )
        .where(condition)
        .order_by(SentMessage.sent_at, SentMessage.id)
        .limit(request.list_limit)
    )
    items = [
        {
            "vendor": r.vendor, "message_id": r.message_id, "raw_message_id": r.raw_message_id,
            "status": r.status, "sent_at": iso(r.sent_at), "sender": r.sender, "campaign": r.campaign_id,
            "country": r.country_iso2, "client_ref": r.client_ref,
            "age_hours": round((request.now - r.sent_at).total_seconds() / 3600, 1),
        }
        for r in connection.execute(statement)
    ]
    return {"total": int(total), "limit": request.list_limit, "items": items}


def _unmatched_list(connection: Connection, settings: Settings, request: ReportRequest, total: int):
    """The first `list_limit` unmatched receipts, oldest first."""
    statement = (
        select(
            Receipt.vendor, Receipt.message_id, Receipt.raw_message_id, Receipt.status, Receipt.vendor_status,
            Receipt.received_at, Receipt.client_ref, Receipt.batch_id, Receipt.event_id,
        )
        .where(_unmatched_in_range(settings, request))
        .order_by(Receipt.received_at, Receipt.id)
        .limit(request.list_limit)
    )
    items = [
        {
            "vendor": r.vendor, "message_id": r.message_id, "raw_message_id": r.raw_message_id,
            "status": r.status, "vendor_status": r.vendor_status, "received_at": iso(r.received_at),
            "client_ref": r.client_ref, "batch_id": r.batch_id, "event_id": r.event_id,
            "age_hours": round((request.now - r.received_at).total_seconds() / 3600, 1),
        }
        for r in connection.execute(statement)
    ]
    return {"total": total, "limit": request.list_limit, "items": items}


def _empty(dimensions: dict[str, Any]) -> dict[str, Any]:
    """A row with its group values and every metric at zero (or None where not attributable yet)."""
    row: dict[str, Any] = dict(dimensions)
    row.update({name: 0 for name in METRICS})
    for name in ("delivery_rate", "click_through_rate", *map(_percentile_name, PERCENTILES)):
        row[name] = None
    row["unmatched"] = row["opt_outs"] = row["opt_ins"] = None
    return row


def _rates(row: dict[str, Any]) -> None:
    """Derived figures of a row: final, delivery rate and click-through rate."""
    row["final"] = sum(row[name] for name in FINAL)
    row["delivery_rate"] = round(row["delivered"] / row["final"], 4) if row["final"] else None
    row["click_through_rate"] = round(row["clicked_messages"] / row["sent"], 4) if row["sent"] else None


def _percentile_name(fraction: float) -> str:
    """time_to_delivery_p50_seconds and friends."""
    return f"time_to_delivery_p{round(fraction * 100)}_seconds"


def _sort_key(key: tuple) -> tuple:
    """Group keys in ascending order, NULLs first."""
    return tuple((value is not None, "" if value is None else str(value)) for value in key)


def _settings_summary(settings: Settings) -> dict[str, Any]:
    """The ages the report applied, so a reader knows what 'missing' and 'unmatched' meant."""
    return {
        "missing_receipt_hours": settings.missing_receipt_hours,
        "missing_receipt_hours_by_vendor": {
            name: settings.missing_hours_for(name) for name in sorted(settings.vendors)
        },
        "unmatched_receipt_hours": settings.unmatched_receipt_hours,
    }


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def dimension_columns(group_by: tuple[str, ...]) -> list[str]:
    """The group columns of the report rows, in the order asked for."""
    return [name for name in group_by if name in DIMENSIONS]

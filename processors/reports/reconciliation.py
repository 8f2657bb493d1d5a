"""The reconciliation report: what was sent, delivered, missing and unmatched, aggregated in SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal_column, select

from core.settings import Settings
from processors.db.models import Click, OptOutHistory, Receipt, SentMessage
from processors.reports import sql
from processors.reports.params import DIMENSIONS
from processors.reports.queries import missing_receipts_condition, unmatched_receipts_condition

FINAL = ("delivered", "failed", "expired", "rejected")
IN_FLIGHT = ("submitted", "pending")
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
    """Run the report's queries (a handful of grouped scans, never a loop over message rows)."""
    dialect = connection.dialect.name
    base = _sent_base(settings, request, dialect)
    # The passes that never look at clicks skip the clicks join.
    plain = _sent_base(settings, request, dialect, with_clicks=False)
    group = list(request.group_by)
    rows = _grouped(connection, base, group)
    # Totals add up the groups' counts (no second scan); only percentiles need their own pass.
    totals = rows.get((), _empty({})) if not group else _summed(rows.values())
    _attach_percentiles(connection, plain, group, dialect, rows, totals)
    _attach_unmatched(connection, settings, request, dialect, rows, totals)
    _attach_opt_outs(connection, request, dialect, rows, totals)
    ordered = [rows[key] for key in sorted(rows, key=_sort_key)]
    for row in [*ordered, totals]:
        _rates(row)
    return Report(
        request=request,
        settings=_settings_summary(settings),
        rows=ordered,
        totals={name: totals[name] for name in METRICS},
        delivery_rate_by_day=_delivery_by_day(connection, plain, rows, group),
        time_to_delivery_histogram=_histogram(connection, plain, dialect),
        missing_receipts=_missing_list(connection, settings, request),
        unmatched_receipts=_unmatched_list(connection, settings, request, totals["unmatched"]),
    )


def _sent_base(settings: Settings, request: ReportRequest, dialect: str, *, with_clicks: bool = True):
    """One row per sent message in range: every dimension, status flags, delay and click count."""
    dimensions = {
        "vendor": SentMessage.vendor,
        "day": sql.utc_day(SentMessage.sent_at, dialect),
        "sender": SentMessage.sender,
        "campaign": SentMessage.campaign_id,
        "country": SentMessage.country_iso2,
    }
    missing = case((missing_receipts_condition(settings, request.now), 1), else_=0)
    columns = [
        *[expression.label(name) for name, expression in dimensions.items()],
        SentMessage.status,
        SentMessage.conflict,
        missing.label("missing"),
        # Our receive times on both ends: vendors' clocks lack zones or precision.
        sql.seconds_between(SentMessage.received_at, SentMessage.delivered_at, dialect).label("delay"),
    ]
    in_range = and_(SentMessage.sent_at >= request.start, SentMessage.sent_at < request.end)
    if not with_clicks:
        return select(*columns).where(in_range).subquery("sent_in_range")
    clicks = (
        select(Click.vendor, Click.message_id, func.count().label("clicks"))
        .group_by(Click.vendor, Click.message_id)
        .subquery("clicks_by_message")
    )
    return (
        select(*columns, func.coalesce(clicks.c.clicks, 0).label("clicks"))
        .select_from(SentMessage)
        .outerjoin(clicks, and_(clicks.c.vendor == SentMessage.vendor, clicks.c.message_id == SentMessage.message_id))
        .where(in_range)
        .subquery("sent_in_range")
    )


def _grouped(connection: Connection, base, group: list[str]) -> dict[tuple, dict[str, Any]]:
    """Counts per group key (percentiles are attached by _attach_percentiles)."""
    keys = [base.c[name] for name in group]
    status = base.c.status
    statement = select(
        *keys,
        func.count().label("sent"),
        *[sql.count_if(status == name).label(name) for name in FINAL],
        sql.count_if(status == "unknown").label("unknown"),
        sql.count_if(and_(status.in_(IN_FLIGHT), base.c.missing == 0)).label("pending"),
        sql.count_if(base.c.missing == 1).label("missing"),
        sql.count_if(base.c.conflict).label("conflicts"),
        func.coalesce(func.sum(base.c.clicks), 0).label("clicks"),
        sql.count_if(base.c.clicks > 0).label("clicked_messages"),
    ).group_by(*keys)
    rows: dict[tuple, dict[str, Any]] = {}
    for record in connection.execute(statement):
        mapping = record._mapping
        key = tuple(mapping[name] for name in group)
        row = _empty(dict(zip(group, key, strict=True)))
        for name in ("sent", *FINAL, "unknown", "pending", "missing", "conflicts", "clicks", "clicked_messages"):
            row[name] = int(mapping[name] or 0)
        if row["sent"] or group:  # an ungrouped query over no rows still returns one all-zero row
            rows[key] = row
    if not group and not rows:
        rows[()] = _empty({})
    return rows


def _attach_percentiles(connection: Connection, base, group: list[str], dialect: str, rows, totals) -> None:
    """Time-to-delivery percentiles per group key and of the totals, written into the rows."""
    if group and dialect != "postgresql":
        _attach_percentiles(connection, base, [], dialect, {(): totals}, totals)  # SQLite: a pass of its own
    both = bool(group) and dialect == "postgresql"  # one pass with GROUPING SETS: the groups and the total
    for record in connection.execute(sql.percentiles(base, group, "delay", PERCENTILES, dialect, total=both)):
        mapping = record._mapping
        target = totals if both and mapping["is_total"] else rows.get(tuple(mapping[name] for name in group))
        if target is not None:
            for fraction in PERCENTILES:
                value = sql.interpolate(record, fraction, dialect)
                target[_percentile_name(fraction)] = None if value is None else round(float(value), 3)


def _summed(rows) -> dict[str, Any]:
    """A totals row: the sum of the groups' counts."""
    totals = _empty({})
    for row in rows:
        for name in ("sent", *FINAL, "unknown", "pending", "missing", "conflicts", "clicks", "clicked_messages"):
            totals[name] += row[name]
    return totals


def _attach_unmatched(connection, settings, request, dialect, rows, totals) -> None:
    """Parked receipts received in range and older than unmatched_receipt_hours, by vendor/day of receipt."""
    group = list(request.group_by)
    dimensions = {"vendor": Receipt.vendor, "day": sql.utc_day(Receipt.received_at, dialect)}
    applicable = set(group) <= UNMATCHED_DIMENSIONS
    keys = [dimensions[name].label(name) for name in group] if applicable else []
    statement = (
        select(*keys, func.count().label("unmatched"))
        .where(_unmatched_in_range(settings, request))
        .group_by(*keys)
    )
    totals["unmatched"] = 0
    for record in connection.execute(statement):
        count = int(record._mapping["unmatched"])
        totals["unmatched"] += count
        if applicable:
            key = tuple(record._mapping[name] for name in group)
            rows.setdefault(key, _empty(dict(zip(group, key, strict=True))))["unmatched"] = count
    if applicable:
        for row in rows.values():
            row["unmatched"] = row["unmatched"] or 0


def _attach_opt_outs(connection, request, dialect, rows, totals) -> None:
    """Consent changes (STOP after consent, START after a STOP) received in range."""
    group = list(request.group_by)
    dimensions = {
        "vendor": OptOutHistory.vendor,
        "day": sql.utc_day(OptOutHistory.received_at, dialect),
        "sender": OptOutHistory.sender,
    }
    applicable = set(group) <= OPT_OUT_DIMENSIONS
    keys = [dimensions[name].label(name) for name in group] if applicable else []
    changed = OptOutHistory.changed.is_(True)
    statement = (
        select(
            *keys,
            sql.count_if(and_(changed, OptOutHistory.action == "opt_out")).label("opt_outs"),
            sql.count_if(and_(changed, OptOutHistory.action == "opt_in")).label("opt_ins"),
        )
        .where(OptOutHistory.received_at >= request.start, OptOutHistory.received_at < request.end, changed)
        .group_by(*keys)
    )
    totals["opt_outs"] = totals["opt_ins"] = 0
    for record in connection.execute(statement):
        mapping = record._mapping
        totals["opt_outs"] += int(mapping["opt_outs"])
        totals["opt_ins"] += int(mapping["opt_ins"])
        if applicable:
            key = tuple(mapping[name] for name in group)
            row = rows.setdefault(key, _empty(dict(zip(group, key, strict=True))))
            row["opt_outs"], row["opt_ins"] = int(mapping["opt_outs"]), int(mapping["opt_ins"])
    if applicable:
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


def _delivery_by_day(connection: Connection, base, rows: dict[tuple, dict[str, Any]], group: list[str]):
    """Delivery rate per vendor and day of sending, for the chart (from the grouped rows when they have both)."""
    if {"vendor", "day"} <= set(group):
        vendor_at, day_at = group.index("vendor"), group.index("day")
        sums: dict[tuple, list[int]] = {}
        for key, row in rows.items():
            if row["sent"]:  # rows only known from unmatched receipts or opt-outs sent nothing
                counts = sums.setdefault((key[vendor_at], key[day_at]), [0, 0, 0])
                counts[0] += row["sent"]
                counts[1] += row["delivered"]
                counts[2] += sum(row[name] for name in FINAL)
        records = [(vendor, day, *counts) for (vendor, day), counts in sorted(sums.items())]
    else:
        statement = (
            select(
                base.c.vendor,
                base.c.day,
                func.count().label("sent"),
                sql.count_if(base.c.status == "delivered").label("delivered"),
                sql.count_if(base.c.status.in_(FINAL)).label("final"),
            )
            .group_by(base.c.vendor, base.c.day)
            .order_by(base.c.vendor, base.c.day)
        )
        records = connection.execute(statement).all()
    series = []
    for vendor, day, sent, delivered, final in records:
        rate = round(delivered / final, 4) if final else None
        series.append({"vendor": vendor, "day": day, "sent": sent, "delivered": delivered, "final": final,
                       "delivery_rate": rate})
    return series


def _histogram(connection: Connection, base, dialect: str) -> list[dict[str, Any]]:
    """Delivered messages per time-to-delivery bucket."""
    delay = base.c.delay
    uppers = [upper for _, upper in BUCKETS if upper is not None]
    if dialect == "postgresql":
        # width_bucket over the bounds evaluates the (numeric) delay once per row; a CASE would per branch.
        bounds = literal_column("ARRAY[" + ", ".join(f"{upper}.0" for upper in uppers) + "]::float8[]")
        bucket = func.width_bucket(delay, bounds).label("bucket")
    else:
        bucket = case(*[(delay < upper, index) for index, upper in enumerate(uppers)], else_=len(uppers)).label(
            "bucket"
        )
    statement = select(bucket, func.count()).where(delay.is_not(None)).group_by(bucket)
    counts = {int(index): count for index, count in connection.execute(statement)}
    return [
        {"bucket": label, "upper_seconds": upper, "count": counts.get(index, 0)}
        for index, (label, upper) in enumerate(BUCKETS)
    ]


def _missing_list(connection: Connection, settings: Settings, request: ReportRequest) -> dict[str, Any]:
    """The first `list_limit` sent messages still without a final status past their vendor's age."""
    condition = and_(
        SentMessage.sent_at >= request.start,
        SentMessage.sent_at < request.end,
        missing_receipts_condition(settings, request.now),
    )
    total = connection.scalar(select(func.count()).select_from(SentMessage).where(condition)) or 0
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

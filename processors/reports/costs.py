"""What was paid for: reported prices per group and currency, against what the sender or the rate card expected.

Amounts are summed in SQL as integers (billionths of the currency unit) and only ever within one currency: every
row is a (group, currency) pair, and the totals are one row per currency. Expected prices come from the sent
message (`expected_price`), else the vendor's rate card for the destination country times the billed segments;
a message is compared only when its expected price is in the currency the vendor reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, null, or_, select

from core.settings import Settings
from processors.db.models import SentMessage
from processors.domain.money import from_nanos, to_nanos
from processors.reports import sql
from processors.reports.queries import missing_receipts_condition
from processors.reports.reconciliation import iso

NOT_DELIVERED = ("failed", "expired", "rejected")
COUNTS = ("messages", "messages_billed", "billed_segments", "delivered_billed", "messages_not_delivered",
          "compared_messages", "messages_differing", "currency_mismatches")
AMOUNTS = ("total_cost", "cost_not_delivered", "reported_cost_compared", "expected_cost")
METRICS = (*COUNTS, *AMOUNTS, "cost_per_delivered_message", "reported_minus_expected")
DIFFERING_COLUMNS = ("vendor", "message_id", "currency", "parts", "reported", "expected", "difference", "sent_at")


@dataclass(frozen=True)
class CostRequest:
    """Messages sent in [start, end), grouped by `group_by`; missing counts as of `now`."""

    start: datetime
    end: datetime
    now: datetime
    group_by: tuple[str, ...] = ()
    list_limit: int = 1000


def _rate_card(settings: Settings):
    """(expected price of a message from the rate card, its currency): per part, times the message's parts."""
    price_cases, currency_cases = [], []
    for vendor_name, vendor in sorted(settings.vendors.items()):
        for country, (amount, currency) in sorted(vendor.rates.items()):
            when = and_(SentMessage.vendor == vendor_name, SentMessage.country_iso2 == country)
            price_cases.append((when, literal(to_nanos(amount)) * SentMessage.parts))
            currency_cases.append((when, literal(currency)))
    if not price_cases:
        return null(), null()
    return case(*price_cases, else_=null()), case(*currency_cases, else_=null())


def _base(settings: Settings, request: CostRequest, dialect: str):
    """One row per sent message in range: dimensions, reported and expected price, and whether they compare."""
    rate_price, rate_currency = _rate_card(settings)
    has_own = SentMessage.expected_price_nanos.is_not(None)
    expected = case((has_own, SentMessage.expected_price_nanos), else_=rate_price)
    expected_currency = case((has_own, SentMessage.expected_currency), else_=rate_currency)
    missing = case((missing_receipts_condition(settings, request.now), 1), else_=0)
    return (
        select(
            SentMessage.vendor.label("vendor"),
            sql.utc_day(SentMessage.sent_at, dialect).label("day"),
            SentMessage.sender.label("sender"),
            SentMessage.campaign_id.label("campaign"),
            SentMessage.country_iso2.label("country"),
            SentMessage.price_currency.label("currency"),
            SentMessage.status, SentMessage.parts, SentMessage.price_nanos.label("price"),
            SentMessage.vendor.label("message_vendor"), SentMessage.message_id, SentMessage.sent_at,
            expected.label("expected"), expected_currency.label("expected_currency"), missing.label("missing"),
        )
        .where(SentMessage.sent_at >= request.start, SentMessage.sent_at < request.end)
        .subquery("priced")
    )


def _money(nanos: int | None) -> str | None:
    """An amount as a decimal string ("0.0416"); None stays None."""
    value = from_nanos(nanos)
    return None if value is None else format(value, "f")


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    """Amounts as decimal strings, and the derived figures."""
    delivered = row["delivered_billed"]
    per_delivered = None
    if delivered and row["total_cost"] is not None:
        quotient = Decimal(row["total_cost"]) / Decimal(delivered) / Decimal(1_000_000_000)
        per_delivered = format(quotient.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN), "f")
    difference = None
    if row["compared_messages"]:
        difference = _money(row["reported_cost_compared"] - row["expected_cost"])
    finished = {**row, **{name: _money(row[name]) for name in AMOUNTS}}
    finished["cost_per_delivered_message"] = per_delivered
    finished["reported_minus_expected"] = difference
    return finished


def build_cost_report(connection: Connection, settings: Settings, request: CostRequest) -> dict[str, Any]:
    """The cost report: grouped rows per currency, totals per currency, and the messages whose price differs."""
    base = _base(settings, request, connection.dialect.name)
    billed = base.c.price.is_not(None)
    not_delivered = and_(billed, or_(base.c.status.in_(NOT_DELIVERED), base.c.missing == 1))
    compared = and_(billed, base.c.expected.is_not(None), base.c.expected_currency == base.c.currency)
    mismatch = and_(billed, base.c.expected.is_not(None),
                    or_(base.c.currency.is_(None), base.c.expected_currency != base.c.currency))

    def total(column, condition):
        return func.sum(case((condition, column), else_=None))

    keys = [base.c[name] for name in request.group_by]
    statement = select(
        *keys, base.c.currency,
        func.count().label("messages"),
        sql.count_if(billed).label("messages_billed"),
        func.coalesce(total(base.c.parts, billed), 0).label("billed_segments"),
        sql.count_if(and_(billed, base.c.status == "delivered")).label("delivered_billed"),
        sql.count_if(not_delivered).label("messages_not_delivered"),
        sql.count_if(compared).label("compared_messages"),
        sql.count_if(and_(compared, base.c.price != base.c.expected)).label("messages_differing"),
        sql.count_if(mismatch).label("currency_mismatches"),
        total(base.c.price, billed).label("total_cost"),
        total(base.c.price, not_delivered).label("cost_not_delivered"),
        total(base.c.price, compared).label("reported_cost_compared"),
        total(base.c.expected, compared).label("expected_cost"),
    ).group_by(*keys, base.c.currency)
    rows, totals = [], {}
    for record in connection.execute(statement):
        mapping = record._mapping
        row = {name: mapping[name] for name in request.group_by}
        row["currency"] = mapping["currency"]
        row.update({name: int(mapping[name] or 0) for name in COUNTS})
        row.update({name: None if mapping[name] is None else int(mapping[name]) for name in AMOUNTS})
        rows.append(row)
        summed = totals.setdefault(row["currency"], {"currency": row["currency"], **dict.fromkeys(COUNTS, 0),
                                                     **dict.fromkeys(AMOUNTS)})
        for name in COUNTS:
            summed[name] += row[name]
        for name in AMOUNTS:
            if row[name] is not None:
                summed[name] = (summed[name] or 0) + row[name]
    order = [*request.group_by, "currency"]
    rows.sort(key=lambda row: tuple((row[name] is not None, str(row[name] or "")) for name in order))
    return {
        "report": "costs",
        "from": iso(request.start),
        "to": iso(request.end),
        "now": iso(request.now),
        "group_by": list(request.group_by),
        "columns": [*request.group_by, "currency", *METRICS],
        "rows": [_finish(row) for row in rows],
        "totals": [_finish(totals[key]) for key in sorted(totals, key=lambda c: (c is not None, c or ""))],
        "differing_messages": _differing(connection, base, compared, request.list_limit),
    }


def _differing(connection: Connection, base, compared, limit: int) -> dict[str, Any]:
    """The messages whose reported price is not what was expected (same currency), largest difference first."""
    condition = and_(compared, base.c.price != base.c.expected)
    count = connection.scalar(select(func.count()).select_from(base).where(condition)) or 0
    statement = (
        select(base.c.message_vendor, base.c.message_id, base.c.currency, base.c.parts, base.c.price,
               base.c.expected, base.c.sent_at)
        .where(condition)
        .order_by(func.abs(base.c.price - base.c.expected).desc(), base.c.sent_at, base.c.message_id)
        .limit(limit)
    )
    items = []
    for vendor, message_id, currency, parts, price, expected, sent_at in connection.execute(statement):
        items.append({
            "vendor": vendor, "message_id": message_id, "currency": currency, "parts": parts,
            "reported": _money(price), "expected": _money(expected),
            "difference": _money(price - expected), "sent_at": iso(sent_at),
        })
    return {"total": int(count), "limit": limit, "items": items}


def to_csv(report: dict[str, Any]) -> str:
    """One line per (group, currency)."""
    from processors.reports.compliance import rows_csv

    return rows_csv(tuple(report["columns"]), report["rows"])


def to_html(report: dict[str, Any], *, base_url: str = "", csv_url: str | None = None) -> str:
    """One self-contained page: totals per currency, the grouped rows, the messages whose price differs."""
    from markupsafe import Markup

    from processors.reports.html import STYLE
    from processors.reports.templating import message_link, render

    return render("costs.html", report=report, style=Markup(STYLE), csv_url=csv_url, labels=LABELS,
                  message_url=message_link(base_url))


LABELS = {
    "vendor": "Vendor", "day": "Day", "sender": "Sender", "campaign": "Campaign", "country": "Country",
    "currency": "Currency", "messages": "Messages", "messages_billed": "Billed", "billed_segments": "Billed segments",
    "delivered_billed": "Delivered (billed)", "messages_not_delivered": "Not delivered (billed)",
    "compared_messages": "Compared with expected", "messages_differing": "Price differs",
    "currency_mismatches": "Expected in another currency", "total_cost": "Total reported cost",
    "cost_not_delivered": "Cost of messages not delivered", "reported_cost_compared": "Reported (compared)",
    "expected_cost": "Expected (compared)", "cost_per_delivered_message": "Cost per delivered message",
    "reported_minus_expected": "Reported − expected",
}

"""Parsing of report parameters (dates, group-by, formats), shared by the CLI and the read API."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

DIMENSIONS = ("vendor", "day", "sender", "campaign", "country")
FORMATS = ("json", "csv", "html")


class ParameterError(ValueError):
    """A bad report parameter; `kind` is "format" (unparseable value) or "constraint" (a broken rule)."""

    def __init__(self, name: str, message: str, kind: str = "format") -> None:
        super().__init__(f"{name}: {message}")
        self.name, self.message, self.kind = name, message, kind


# Report times stay well inside datetime's years 1-9999: a report subtracts days (the default range) and ages
# (missing receipts) from them, which overflowed near year 1 (a 500); no SMS was sent before 1970.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_time(name: str, value: str) -> datetime:
    """A UTC instant from `YYYY-MM-DD` (midnight UTC) or ISO 8601 (naive means UTC, `Z` accepted), between
    EARLIEST and LATEST."""
    text = (value or "").strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ParameterError(name, f"{value[:40]!r} is not a date (YYYY-MM-DD) or ISO 8601 time") from None
    try:
        instant = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        instant = EARLIEST - timedelta(days=1)
    if not EARLIEST <= instant < LATEST:
        raise ParameterError(name, f"{value[:40]!r} is out of range: choose a time from {EARLIEST:%Y-%m-%d} "
                                   f"to before {LATEST:%Y-%m-%d}", kind="constraint")
    return instant


def parse_range(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """The half-open range [from, to): `to` defaults to now, `from` to seven days before `to`."""
    end_at = parse_time("to", end) if end else now
    start_at = parse_time("from", start) if start else end_at - timedelta(days=7)
    if start_at >= end_at:
        raise ParameterError("from", "must be earlier than 'to'", kind="constraint")
    return start_at, end_at


def parse_group_by(value: str | None) -> tuple[str, ...]:
    """A comma-separated subset of DIMENSIONS, in the order given; empty means one total row."""
    names = [part.strip().lower() for part in (value or "").split(",") if part.strip()]
    unknown = [name for name in names if name not in DIMENSIONS]
    if unknown:
        raise ParameterError(
            "group_by", f"unknown dimension {unknown[0][:40]!r} (choose from {', '.join(DIMENSIONS)})", "constraint"
        )
    if len(set(names)) != len(names):
        raise ParameterError("group_by", "a dimension is repeated", "constraint")
    return tuple(names)


def parse_format(value: str | None, default: str = "json") -> str:
    """One of FORMATS."""
    fmt = (value or default).strip().lower()
    if fmt not in FORMATS:
        raise ParameterError("format", f"{fmt[:20]!r} is not one of {', '.join(FORMATS)}", "constraint")
    return fmt


def parse_limit(value: str | None, default: int = 1000, maximum: int = 100_000, name: str = "limit") -> int:
    """A count between 0 and `maximum`: how many rows to list (the totals are always complete), grace days."""
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except ValueError:
        raise ParameterError(name, f"{value[:20]!r} is not an integer") from None
    if not 0 <= limit <= maximum:
        raise ParameterError(name, f"must be between 0 and {maximum}", "constraint")
    return limit

"""Vendor time formats, parsed leniently into aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime


class TimeFormatError(ValueError):
    """A vendor time string in none of the formats its vendor uses."""


def parse_iso(value: str) -> datetime:
    """ISO 8601 with `Z`, `+00:00` or `+0000` (Mobivate MO omits the colon), any fraction; naive means UTC."""
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TimeFormatError(f"not an ISO 8601 time: {value!r}") from None
    return _utc(parsed)


def parse_epoch(value: str | int | float) -> datetime:
    """Epoch seconds, milliseconds or microseconds, told apart by magnitude (Fortytwo sends ms and µs)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TimeFormatError(f"not an epoch time: {value!r}") from None
    if number > 1e14:
        number /= 1_000_000
    elif number > 1e11:
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        raise TimeFormatError(f"epoch time out of range: {value!r}") from None


# SMSC time layouts by digit count; 12 digits is YYMMDDhhmmss or YYYYMMDDhhmm (Jasmin passes whatever
# `submit date:`/`done date:` digits the SMSC wrote, and SMSCs use all four layouts)
SMSC_LAYOUTS = {10: ("%y%m%d%H%M",), 12: ("%y%m%d%H%M%S", "%Y%m%d%H%M"), 14: ("%Y%m%d%H%M%S",)}
SQL_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)\s*(Z|[+-]\d{2}:?\d{2})?")


def parse_yymmddhhmm(value: str, now: datetime | None = None) -> datetime:
    """An SMSC time, `YYMMDDhhmm[ss]` as in SMPP receipts (Jasmin, Twilio RawDlrDoneDate, Vonage scts) or
    `YYYYMMDDhhmm[ss]` as some SMSCs write it; no zone, so UTC. Where 12 digits read both ways, the reading
    nearer to now wins (a receipt is about a message of the last days, not of another decade)."""
    text = str(value).strip()
    layouts = SMSC_LAYOUTS.get(len(text), ()) if text.isdigit() else ()
    readings = []
    for layout in layouts:
        try:
            readings.append(datetime.strptime(text, layout).replace(tzinfo=UTC))
        except ValueError:
            continue
    if not readings:
        raise TimeFormatError(f"not a YYMMDDhhmm[ss] or YYYYMMDDhhmm[ss] time: {value!r}")
    reference = now or datetime.now(UTC)
    return min(readings, key=lambda reading: abs(reading - reference))


def parse_sql_time(value: str) -> datetime:
    """`YYYY-MM-DD HH:MM:SS` (Vonage message-timestamp), UTC unless a zone follows (`+0000`, `+00:00`, `Z`), as
    Vonage's API reference writes it."""
    match = SQL_TIME.fullmatch(str(value).strip())
    if not match:
        raise TimeFormatError(f"not a YYYY-MM-DD HH:MM:SS time: {value!r}")
    day, clock, zone = match.groups()
    if zone and zone != "Z" and ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        return _utc(datetime.fromisoformat(f"{day}T{clock}{'+00:00' if zone == 'Z' else zone or ''}"))
    except ValueError:
        raise TimeFormatError(f"not a valid YYYY-MM-DD HH:MM:SS time: {value!r}") from None


def _utc(parsed: datetime) -> datetime:
    """Aware UTC; a naive time is taken as UTC, which is what vendors without a zone mean."""
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


PARSERS = {"iso": parse_iso, "epoch": parse_epoch, "yymmddhhmm": parse_yymmddhhmm, "sql": parse_sql_time}

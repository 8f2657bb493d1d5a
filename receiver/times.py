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


def parse_yymmddhhmm(value: str) -> datetime:
    """`YYMMDDhhmm[ss]` as in SMPP receipts (Jasmin, Twilio RawDlrDoneDate, Vonage scts); no zone, so UTC."""
    text = str(value).strip()
    if not re.fullmatch(r"\d{10}(\d{2})?", text):
        raise TimeFormatError(f"not a YYMMDDhhmm time: {value!r}")
    try:
        return datetime.strptime(text, "%y%m%d%H%M%S" if len(text) == 12 else "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        raise TimeFormatError(f"not a valid YYMMDDhhmm time: {value!r}") from None


def parse_sql_time(value: str) -> datetime:
    """`YYYY-MM-DD HH:MM:SS` (Vonage message-timestamp), UTC."""
    text = str(value).strip()
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise TimeFormatError(f"not a YYYY-MM-DD HH:MM:SS time: {value!r}") from None


def _utc(parsed: datetime) -> datetime:
    """Aware UTC; a naive time is taken as UTC, which is what vendors without a zone mean."""
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


PARSERS = {"iso": parse_iso, "epoch": parse_epoch, "yymmddhhmm": parse_yymmddhhmm, "sql": parse_sql_time}

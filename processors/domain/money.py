"""Prices as exact integers: billionths of the currency unit, so sums never drift on any database."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

NANOS = Decimal(1_000_000_000)


def to_nanos(amount: str | Decimal | None) -> int | None:
    """A price's magnitude in billionths ("0.0450" → 45_000_000); None when absent or not a number.

    The magnitude: Twilio writes what it charged as a negative amount ("-0.00750"), other vendors as positive.
    """
    if amount is None or amount == "":
        return None
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return int((abs(value) * NANOS).to_integral_value())


def from_nanos(nanos: int | None) -> Decimal | None:
    """The decimal amount of a nanos integer."""
    return None if nanos is None else (Decimal(nanos) / NANOS).normalize()


def currency_code(value: str | None) -> str | None:
    """An ISO 4217 code, upper case; None for anything else (a price without a known currency is never summed
    with one that has it)."""
    text = (value or "").strip().upper()
    return text if len(text) == 3 and text.isalpha() else None

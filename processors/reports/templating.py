"""The Jinja2 environment of the HTML reports: templates shipped in the package, autoescaped, strict about names."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

ENVIRONMENT = Environment(
    loader=PackageLoader("processors.reports", "templates"),
    autoescape=select_autoescape(["html"]),  # every value a vendor or subscriber wrote is escaped
    undefined=StrictUndefined,  # a misspelt name fails the test suite rather than rendering blank
    trim_blocks=True,
    lstrip_blocks=True,
)


def percent(value: float | None, digits: int = 1) -> str:
    """0.6667 → "66.7 %"; None (no final status yet) → "–"."""
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def number(value) -> str:
    """Counts with thousands separators; None → "–"."""
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def duration(seconds: float | None) -> str:
    """3725.0 → "1 h 2 min"; under a minute in seconds; days beyond 48 hours."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:g} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours / 24:.1f} days"


def message_link(base_url: str):
    """The message lookup URL of (vendor, message id) under the read API's base URL ("" = this server)."""
    from urllib.parse import quote

    def link(vendor: str, message_id: str) -> str:
        return f"{base_url.rstrip('/')}/v1/messages/{quote(vendor, safe='')}/{quote(message_id, safe='')}"

    return link


ENVIRONMENT.filters["duration"] = duration
ENVIRONMENT.filters["percent"] = percent
ENVIRONMENT.filters["number"] = number


def render(name: str, **context) -> str:
    """Render one template of processors/reports/templates."""
    return ENVIRONMENT.get_template(name).render(**context)

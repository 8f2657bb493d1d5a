"""Hand-written inline SVG charts for the HTML report: no scripts, fonts or network needed to draw them."""

from __future__ import annotations

from html import escape
from typing import Any

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
STATUS_COLOURS = {
    "delivered": "#16a34a", "failed": "#dc2626", "expired": "#f97316", "rejected": "#9f1239",
    "unknown": "#a855f7", "pending": "#60a5fa", "no receipt yet": "#9ca3af",
}


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    """An accessible SVG element drawn in a width x height box and scaled to the page width."""
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _axis_title(x: float, y: float, text: str, vertical: bool = False) -> str:
    """An axis title; a vertical one is rotated to read bottom-up beside the y axis."""
    rotate = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if vertical else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" font-size="11" class="axis-title"{rotate}>'
            f"{escape(text)}</text>")


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11, cls: str = "") -> str:
    """An escaped SVG text element."""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" class="{cls}">'
            f"{escape(text)}</text>")


def delivery_rate_chart(series: list[dict[str, Any]], width: int = 1100, height: int = 300) -> str:
    """Delivery rate (delivered / final) per day, one line per vendor."""
    left, right, top, bottom = 64, 150, 16, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    days = sorted({point["day"] for point in series if point["day"]})
    vendors = sorted({point["vendor"] for point in series})
    body = []
    for tick in range(0, 101, 25):
        y = top + plot_h * (1 - tick / 100)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>')
        body.append(_text(left - 6, y + 4, f"{tick}%", "end"))
    body.append(_axis_title(16, top + plot_h / 2, "Delivery rate (delivered / final)", vertical=True))
    body.append(_axis_title(left + plot_w / 2, height - 8, "Day the messages were sent (UTC)"))
    if not days:
        body.append(_text(left + plot_w / 2, top + plot_h / 2, "no sent messages in range", "middle", 13))
        return _svg(width, height, "Delivery rate over time per vendor", body)

    def x_of(day: str) -> float:
        return left + (plot_w / 2 if len(days) == 1 else plot_w * days.index(day) / (len(days) - 1))

    step = max(1, len(days) // 8)
    for index, day in enumerate(days):
        if index % step == 0 or index == len(days) - 1:
            body.append(_text(x_of(day), top + plot_h + 16, day, "middle", 10))
    for number, vendor in enumerate(vendors):
        colour = PALETTE[number % len(PALETTE)]
        points = [p for p in series if p["vendor"] == vendor and p["day"] and p["delivery_rate"] is not None]
        coordinates = [(x_of(p["day"]), top + plot_h * (1 - p["delivery_rate"])) for p in points]
        if len(coordinates) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" class="series"/>')
        for (x, y), point in zip(coordinates, points, strict=True):
            tip = f"{vendor} {point['day']}: {point['delivery_rate']:.1%} ({point['delivered']}/{point['final']})"
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}" class="point">'
                        f"<title>{escape(tip)}</title></circle>")
        legend_y = top + 14 + number * 18
        body.append(f'<rect x="{left + plot_w + 16}" y="{legend_y - 9}" width="12" height="12" fill="{colour}"/>')
        body.append(_text(left + plot_w + 34, legend_y + 1, vendor))
    return _svg(width, height, "Delivery rate over time per vendor", body)


def status_mix_chart(bars: list[tuple[str, dict[str, Any]]], width: int = 1100) -> str:
    """One stacked horizontal bar per group: the share of each current status among messages sent."""
    label_w, right, bar_h, gap, top = 190, 20, 18, 8, 30
    height = top + len(bars) * (bar_h + gap) + 36
    plot_w = width - label_w - right
    body = [_axis_title(label_w + plot_w / 2, height - 8, "Share of the messages sent, by current status (0-100 %)")]
    x = label_w
    for name, colour in STATUS_COLOURS.items():  # legend
        body.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{colour}"/>')
        body.append(_text(x + 14, 15, name, size=10))
        x += 14 + 7 * len(name) + 14
    for index, (label, row) in enumerate(bars):
        y = top + index * (bar_h + gap)
        body.append(_text(label_w - 8, y + bar_h - 5, label[:30], "end"))
        sent = row["sent"] or 0
        segments = status_segments(row)
        offset = float(label_w)
        for name, count in segments.items():
            if not sent or not count:
                continue
            share = count / sent
            body.append(
                f'<rect x="{offset:.1f}" y="{y}" width="{plot_w * share:.1f}" height="{bar_h}" '
                f'fill="{STATUS_COLOURS[name]}" class="segment"><title>{escape(label)}: {escape(name)} '
                f"{count} of {sent} ({share:.1%})</title></rect>"
            )
            offset += plot_w * share
        if not sent:
            body.append(_text(label_w + 4, y + bar_h - 5, "nothing sent", size=10))
    return _svg(width, height, "Status mix", body)


def status_segments(row: dict[str, Any]) -> dict[str, int]:
    """Disjoint current-status counts summing to `sent`; 'no receipt yet' is submitted/pending past its age."""
    named = {name: row[name] or 0 for name in ("delivered", "failed", "expired", "rejected", "unknown", "pending")}
    named["no receipt yet"] = max(0, (row["sent"] or 0) - sum(named.values()))
    return named


def histogram_chart(buckets: list[dict[str, Any]], totals: dict[str, Any], width: int = 1100, height: int = 280):
    """Delivered messages per time-to-delivery bucket, with p50/p95/p99 written above."""
    left, right, top, bottom = 64, 16, 36, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([bucket["count"] for bucket in buckets] + [1])
    slot = plot_w / max(1, len(buckets))
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
            _axis_title(16, top + plot_h / 2, "Delivered messages", vertical=True),
            _axis_title(left + plot_w / 2, height - 8, "Time from our receipt of the send to its delivered receipt")]
    for index, bucket in enumerate(buckets):
        bar_h = plot_h * bucket["count"] / peak
        x = left + index * slot + slot * 0.15
        y = top + plot_h - bar_h
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{bar_h:.1f}" '
                    f'fill="#2563eb" class="bar"><title>{escape(bucket["bucket"])}: {bucket["count"]}</title></rect>')
        body.append(_text(x + slot * 0.35, top + plot_h + 16, bucket["bucket"], "middle", 10))
        body.append(_text(x + slot * 0.35, y - 4, str(bucket["count"]), "middle", 10))
    figures = [
        f"p{p}: {_seconds(totals[f'time_to_delivery_p{p}_seconds'])}" for p in (50, 95, 99)
    ]
    body.append(_text(left, 16, "   ".join(figures), size=12, cls="strong"))
    return _svg(width, height, "Time-to-delivery distribution", body)


def _seconds(value: float | None) -> str:
    """Human duration: 4.2 s, 3.5 min, 2.1 h."""
    if value is None:
        return "n/a"
    if value < 60:
        return f"{value:g} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"

"""Server-side SVG charts: no JavaScript and no third-party asset, so pages work offline.

Geometry is computed in ``Decimal`` like the figures it draws (amounts never pass through float)
and rounded to a tenth of a pixel. Labels are escaped. The markup carries its own colours, so a
chart looks the same inline in a page or saved as an ``.svg`` file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

Number = Decimal | int
PIXEL = Decimal("0.1")
NEUTRAL = "#3a6ea5"
POSITIVE = "#2e7d4f"
NEGATIVE = "#c0392b"
GRID = "#d9dee5"
INK = "#1f2933"
MUTED = "#6b7785"
PALETTE = ("#3a6ea5", "#e07b39", "#2e7d4f", "#8e5ea2", "#c0392b", "#3c9aa5", "#b8860b")
FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="11"'


def _px(value: Number) -> str:
    return str(Decimal(value).quantize(PIXEL))


def format_number(value: Number) -> str:
    """1,234,567.89 for Decimals (as stored), 1,234 for integers."""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,f}"


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FONT}>'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def bar_chart(
    items: Sequence[tuple[str, Number]],
    *,
    title: str,
    signed: bool = False,
    width: int = 560,
) -> SafeString:
    """Horizontal bars, one per (label, value); ``signed`` colours gains green and losses red.

    With negative values the zero axis moves right so losses extend left of it.
    """
    label_w, value_w, row_h, bar_h, pad = 150, 110, 24, 14, 6
    area = Decimal(width - label_w - value_w - 2 * pad)
    height = max(row_h * len(items) + 2 * pad, 40)
    if not items:
        return _svg(width, 40, title, [_text(pad, 24, "No data", MUTED)])
    highest = max([Decimal(v) for _, v in items] + [Decimal(0)])
    lowest = min([Decimal(v) for _, v in items] + [Decimal(0)])
    span = (highest - lowest) or Decimal(1)
    zero = Decimal(label_w + pad) + area * (-lowest) / span
    body = [
        f'<line x1="{_px(zero)}" y1="{pad}" x2="{_px(zero)}" y2="{height - pad}" stroke="{GRID}"/>'
    ]
    for index, (label, raw) in enumerate(items):
        value = Decimal(raw)
        top = pad + index * row_h
        length = area * abs(value) / span
        left = zero - length if value < 0 else zero
        colour = NEUTRAL if not signed else (NEGATIVE if value < 0 else POSITIVE)
        body.append(_text(label_w - 4, top + 16, label, INK, anchor="end"))
        body.append(
            f'<rect x="{_px(left)}" y="{top + (row_h - bar_h) // 2}" width="{_px(length)}" '
            f'height="{bar_h}" rx="2" fill="{colour}"><title>{escape(label)}: '
            f"{escape(format_number(raw))}</title></rect>"
        )
        body.append(_text(width - pad, top + 16, format_number(raw), INK, anchor="end"))
    return _svg(width, height, title, body)


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[date, Number]]]],
    *,
    title: str,
    width: int = 640,
    height: int = 240,
) -> SafeString:
    """One line per named series of (date, value) points, with a y grid and a legend."""
    points = [(d, Decimal(v)) for _, data in series for d, v in data]
    if not points:
        return _svg(width, 40, title, [_text(6, 24, "No data", MUTED)])
    left, right, top, bottom = 90, 16, 12, 44
    days = [d for d, _ in points]
    first, last = min(days), max(days)
    lowest = min([v for _, v in points] + [Decimal(0)])
    highest = max([v for _, v in points] + [Decimal(0)])
    span_y = (highest - lowest) or Decimal(1)
    span_x = Decimal(max((last - first).days, 1))
    plot_w, plot_h = Decimal(width - left - right), Decimal(height - top - bottom)

    def x(day: date) -> Decimal:
        return left + plot_w * (day - first).days / span_x

    def y(value: Decimal) -> Decimal:
        return top + plot_h * (highest - value) / span_y

    body: list[str] = []
    for step in range(5):
        level = lowest + span_y * step / 4
        body.append(
            f'<line x1="{left}" y1="{_px(y(level))}" x2="{width - right}" y2="{_px(y(level))}" '
            f'stroke="{GRID}"/>'
        )
        body.append(
            _text(
                left - 6,
                y(level) + 4,
                format_number(level.quantize(Decimal(1))),
                MUTED,
                anchor="end",
            )
        )
    body.append(_text(left, height - bottom + 16, first.isoformat(), MUTED))
    body.append(_text(width - right, height - bottom + 16, last.isoformat(), MUTED, anchor="end"))
    for index, (name, data) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{_px(x(d))},{_px(y(Decimal(v)))}" for d, v in sorted(data))
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        legend_x = left + index * 110
        body.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
        )
        body.append(_text(legend_x + 14, height - 5, name, INK))
    return _svg(width, height, title, body)


def _text(x: Number, y: Number, text: str, colour: str, *, anchor: str = "start") -> str:
    return (
        f'<text x="{_px(x)}" y="{_px(y)}" fill="{colour}" text-anchor="{anchor}">'
        f"{escape(text)}</text>"
    )

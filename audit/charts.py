"""Small server-drawn SVG charts (no script, so the strict CSP holds and they print well).

Every text that goes into the SVG is escaped by format_html; each chart also has its numbers
in a table for screen readers and for copying.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

WIDTH = 720
BAR_AREA = 180


def _n(number: float) -> str:
    """A coordinate, to a tenth (format_html turns every argument into text first)."""
    return f"{number:.1f}"


def _scale(values: Sequence[Decimal]) -> Decimal:
    top = max(values, default=Decimal(0))
    return top if top > 0 else Decimal(1)


def columns(points: Sequence[tuple[str, Decimal]], *, label: str, unit: str = "$") -> SafeString:
    """Vertical bars, one per point (e.g. cost per day), with the largest value marked."""
    top = _scale([v for _, v in points])
    step = WIDTH / max(len(points), 1)
    bars = format_html_join(
        "",
        '<g><title>{} · {}{}</title><rect x="{}" y="{}" width="{}" height="{}" class="bar"/></g>',
        (
            (
                name,
                unit,
                value,
                _n(i * step + step * 0.15),
                _n(20 + BAR_AREA - float(value / top) * BAR_AREA),
                _n(step * 0.7),
                _n(max(float(value / top) * BAR_AREA, 0.5)),
            )
            for i, (name, value) in enumerate(points)
        ),
    )
    first = points[0][0] if points else ""
    last = points[-1][0] if points else ""
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}'
        '<text x="0" y="12" class="axis">{} {}{}</text>'
        '<text x="0" y="{}" class="axis">{}</text>'
        '<text x="{}" y="{}" class="axis" text-anchor="end">{}</text></svg>',
        WIDTH,
        BAR_AREA + 40,
        label,
        bars,
        _("max"),
        unit,
        top,
        BAR_AREA + 36,
        first,
        WIDTH,
        BAR_AREA + 36,
        last,
    )


def rows(points: Sequence[tuple[str, Decimal]], *, label: str, unit: str = "$") -> SafeString:
    """Horizontal bars with their labels (e.g. the users who cost most)."""
    top = _scale([v for _, v in points])
    height = 26 * len(points) + 4
    bars = format_html_join(
        "",
        '<g><text x="0" y="{}" class="label">{}</text><rect x="200" y="{}" width="{}" '
        'height="18" class="bar"/><text x="{}" y="{}" class="value">{}{}</text></g>',
        (
            (
                26 * i + 17,
                name,
                26 * i + 3,
                _n(max(float(value / top) * (WIDTH - 320), 0.5)),
                _n(205 + float(value / top) * (WIDTH - 320)),
                26 * i + 17,
                unit,
                value,
            )
            for i, (name, value) in enumerate(points)
        ),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        WIDTH,
        height,
        label,
        bars,
    )


def histogram(values: Sequence[Decimal], *, buckets: int = 12) -> list[tuple[str, Decimal]]:
    """How many values fall in each of `buckets` equal ranges, as (range, count) points."""
    if not values:
        return []
    top = max(values)
    if top <= 0:
        return [("$0", Decimal(len(values)))]  # nothing cost anything (the offline engine)
    width = top / buckets
    counts = [0] * buckets
    for value in values:
        counts[min(int(value / width), buckets - 1)] += 1
    cent = Decimal("0.0001")
    return [
        (f"${(width * i).quantize(cent)} to {(width * (i + 1)).quantize(cent)}", Decimal(n))
        for i, n in enumerate(counts)
    ]

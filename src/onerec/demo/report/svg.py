"""Dependency-free inline SVG charts for the demo report: line charts and grouped bar charts.

Every function returns one ``<svg>`` element as a string (no scripts, fonts or external
references), so the HTML report stays a single self-contained file. Text is escaped; non-finite
values are skipped, and an empty chart says "no data" instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 34, 58
MARGIN_RIGHT_AXIS = 60  # room for a second y axis' tick labels


@dataclass
class Series:
    """One line: ``points`` as (x, y); ``axis`` "right" plots it against a second y axis."""

    name: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False
    axis: str = "left"


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values from at most ``low`` to at least ``high`` (steps 1, 2, 2.5, 5 × 10^k)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def fmt_number(value: float) -> str:
    """Compact tick label: 12k, 0.05, 1.2e-05."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value / 1000:g}k"
    if magnitude >= 1:
        return f"{value:g}"
    if magnitude >= 1e-3:
        return f"{value:.4g}"
    return f"{value:.1e}"


class _Frame:
    """Maps data coordinates to the plot area and draws axes, ticks and labels."""

    def __init__(
        self,
        width: int,
        height: int,
        x_range: tuple[float, float],
        y_ticks: list[float],
        right_axis: bool = False,
    ):
        self.width, self.height = width, height
        self.x0, self.x1 = x_range if x_range[1] > x_range[0] else (x_range[0] - 1, x_range[0] + 1)
        self.y0, self.y1 = y_ticks[0], y_ticks[-1]
        self.left = MARGIN_LEFT
        self.right = width - (MARGIN_RIGHT_AXIS if right_axis else MARGIN_RIGHT)
        self.top, self.bottom = MARGIN_TOP, height - MARGIN_BOTTOM

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def py(self, y: float, y0: float | None = None, y1: float | None = None) -> float:
        lo, hi = (self.y0, self.y1) if y0 is None or y1 is None else (y0, y1)
        span = hi - lo or 1.0
        return self.bottom - (y - lo) / span * (self.bottom - self.top)

    def y_axis(self, ticks: list[float], side: str = "left") -> list[str]:
        parts = []
        x = self.left if side == "left" else self.right
        anchor, dx = ("end", -6) if side == "left" else ("start", 6)
        for tick in ticks:
            y = self.py(tick, ticks[0], ticks[-1])
            if side == "left":
                parts.append(
                    f'<line x1="{self.left}" x2="{self.right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                )
            parts.append(
                f'<text x="{x + dx}" y="{y + 4:.1f}" text-anchor="{anchor}" class="tick">{fmt_number(tick)}</text>'
            )
        return parts

    def x_axis(self, ticks: list[float]) -> list[str]:
        parts = [
            f'<line x1="{self.left}" x2="{self.right}" y1="{self.bottom}" y2="{self.bottom}" class="axis"/>'
        ]
        for tick in ticks:
            if self.x0 - 1e-9 <= tick <= self.x1 + 1e-9:
                x = self.px(tick)
                parts.append(
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.bottom}" y2="{self.bottom + 4}" class="axis"/>'
                )
                parts.append(
                    f'<text x="{x:.1f}" y="{self.bottom + 16}" text-anchor="middle" class="tick">{fmt_number(tick)}</text>'
                )
        return parts


def _open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        "<style>.grid{stroke:#e5e5e5;stroke-width:1}.axis{stroke:#444;stroke-width:1}"
        ".tick{font:11px sans-serif;fill:#444}.label{font:12px sans-serif;fill:#222}"
        ".title{font:bold 13px sans-serif;fill:#111}.legend{font:11px sans-serif;fill:#222}</style>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" class="title">{escape(title)}</text>',
    ]


def _labels(width: int, height: int, x_label: str, y_label: str, y2_label: str = "") -> list[str]:
    parts = [
        f'<text x="{(MARGIN_LEFT + width - MARGIN_RIGHT) / 2:.0f}" y="{height - 26}" '
        f'text-anchor="middle" class="label">{escape(x_label)}</text>',
        f'<text transform="translate(14,{height / 2:.0f}) rotate(-90)" text-anchor="middle" '
        f'class="label">{escape(y_label)}</text>',
    ]
    if y2_label:
        parts.append(
            f'<text transform="translate({width - 4},{height / 2:.0f}) rotate(90)" '
            f'text-anchor="middle" class="label">{escape(y2_label)}</text>'
        )
    return parts


def _legend(names: list[str], width: int, height: int, dashed: Sequence[bool] = ()) -> list[str]:
    parts = []
    x, y = MARGIN_LEFT, height - 8
    for index, name in enumerate(names):
        color = PALETTE[index % len(PALETTE)]
        dash = ' stroke-dasharray="5,3"' if index < len(dashed) and dashed[index] else ""
        parts.append(
            f'<line x1="{x}" x2="{x + 18}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" stroke-width="3"{dash}/>'
        )
        parts.append(f'<text x="{x + 22}" y="{y}" class="legend">{escape(name)}</text>')
        x += 30 + 7 * len(name)
        if x > width - 80:
            break
    return parts


def _empty(width: int, height: int, title: str) -> str:
    parts = _open(width, height, title)
    parts.append(
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" class="label">no data</text>'
    )
    return "\n".join([*parts, "</svg>"])


def line_chart(
    series: Sequence[Series],
    title: str,
    x_label: str,
    y_label: str,
    y2_label: str = "",
    width: int = 560,
    height: int = 300,
    markers: bool = False,
    y_from_zero: bool = False,
) -> str:
    """Lines over a shared x axis; series with ``axis="right"`` get their own y scale."""
    clean = [
        Series(s.name, [(x, y) for x, y in s.points if _finite([x, y]) == [x, y]], s.dashed, s.axis)
        for s in series
    ]
    clean = [s for s in clean if s.points]
    if not clean:
        return _empty(width, height, title)
    xs = [x for s in clean for x, _ in s.points]
    scales: dict[str, list[float]] = {}
    for side in ("left", "right"):
        ys = [y for s in clean if s.axis == side for _, y in s.points]
        if ys:
            low = min(0.0, *ys) if y_from_zero and side == "left" else min(ys)
            scales[side] = nice_ticks(low, max(ys))
    both = "left" in scales and "right" in scales
    frame = _Frame(width, height, (min(xs), max(xs)), scales.get("left") or scales["right"], both)
    parts = _open(width, height, title)
    parts += frame.y_axis(scales.get("left") or scales["right"], "left")
    if both:
        parts += frame.y_axis(scales["right"], "right")
    parts += frame.x_axis(nice_ticks(min(xs), max(xs), 6))
    for index, s in enumerate(clean):
        ticks = scales[s.axis] if s.axis in scales and "left" in scales else _frame_ticks(frame)
        points = " ".join(
            f"{frame.px(x):.1f},{frame.py(y, ticks[0], ticks[-1]):.1f}" for x, y in s.points
        )
        color = PALETTE[index % len(PALETTE)]
        dash = ' stroke-dasharray="5,3"' if s.dashed else ""
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
        )
        if markers or len(s.points) == 1:
            for x, y in s.points:
                parts.append(
                    f'<circle cx="{frame.px(x):.1f}" cy="{frame.py(y, ticks[0], ticks[-1]):.1f}" r="3" fill="{color}"/>'
                )
    parts += _labels(width, height, x_label, y_label, y2_label if "left" in scales else "")
    parts += _legend([s.name for s in clean], width, height, [s.dashed for s in clean])
    return "\n".join([*parts, "</svg>"])


def _frame_ticks(frame: _Frame) -> list[float]:
    """The frame's own y range as a two-element tick list."""
    return [frame.y0, frame.y1]


def bar_chart(
    categories: Sequence[str],
    groups: Sequence[tuple[str, Sequence[float]]],
    title: str,
    y_label: str,
    x_label: str = "",
    width: int = 560,
    height: int = 300,
    reference: float | None = None,
    reference_label: str = "",
    y_from_zero: bool = True,
) -> str:
    """Grouped bars: one group of bars per category, one colour per ``groups`` entry."""
    values = [v for _, vals in groups for v in _finite(vals)]
    if not categories or not values:
        return _empty(width, height, title)
    low = min([0.0, *values]) if y_from_zero else min(values)
    high = max([*values, reference if reference is not None else -math.inf])
    ticks = nice_ticks(low, high)
    frame = _Frame(width, height, (0.0, float(len(categories))), ticks)
    parts = _open(width, height, title)
    parts += frame.y_axis(ticks)
    parts.append(
        f'<line x1="{frame.left}" x2="{frame.right}" y1="{frame.bottom}" y2="{frame.bottom}" class="axis"/>'
    )
    slot = (frame.right - frame.left) / len(categories)
    bar = slot * 0.8 / max(len(groups), 1)
    label_every = max(1, math.ceil(len(categories) / 24))
    for c, category in enumerate(categories):
        for g, (_, vals) in enumerate(groups):
            value = vals[c] if c < len(vals) else float("nan")
            if value is None or not math.isfinite(value):
                continue
            x = frame.left + c * slot + slot * 0.1 + g * bar
            y_value, y_zero = frame.py(value), frame.py(max(ticks[0], 0.0))
            top, h = min(y_value, y_zero), abs(y_zero - y_value)
            parts.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[g % len(PALETTE)]}"><title>{escape(category)}: {value:.4g}</title></rect>'
            )
        if c % label_every == 0:
            parts.append(
                f'<text x="{frame.left + (c + 0.5) * slot:.1f}" y="{frame.bottom + 16}" '
                f'text-anchor="middle" class="tick">{escape(category)}</text>'
            )
    if reference is not None and math.isfinite(reference):
        y = frame.py(reference)
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#333" stroke-dasharray="4,3"/>'
        )
        if reference_label:
            parts.append(
                f'<text x="{frame.right - 4}" y="{y - 4:.1f}" text-anchor="end" class="tick">{escape(reference_label)}</text>'
            )
    parts += _labels(width, height, x_label, y_label)
    if len(groups) > 1:
        parts += _legend([name for name, _ in groups], width, height)
    return "\n".join([*parts, "</svg>"])

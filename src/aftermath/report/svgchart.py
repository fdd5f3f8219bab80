"""Fan charts written directly as SVG text for the HTML page: a report of the default scenario has dozens,
and drawing each with matplotlib would take most of the build time. (Figure files for papers are still
drawn with matplotlib, in figures.py.) Every label goes through `esc`; numbers are formatted by us.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

from aftermath.formatting import number
from aftermath.report.content import Fan, ObservationRow, OutcomeSummary, largest_strata, strata_title

FAN = "#2f6690"
INK = "#1d2733"
MUTED = "#5c6b7a"
GRID = "#e4e8ec"
LATER = "#d1495b"
WIDTH, HEIGHT = 520, 250
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 14, 30, 46


def esc(text: str) -> str:
    return escape(text, quote=True)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low] if math.isfinite(low) else [0.0]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 0.5:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _years(times: np.ndarray) -> np.ndarray:
    """datetime64[M] as fractional years."""
    months = times.astype("datetime64[M]").astype(int)
    return 1970 + months / 12.0


class Frame:
    """One panel: maps years and values to SVG coordinates inside a box."""

    def __init__(self, x: float, y: float, width: float, height: float, years: tuple[float, float],
                 values: tuple[float, float]) -> None:
        self.x, self.y, self.width, self.height = x, y, width, height
        self.ticks = nice_ticks(*values)
        self.low, self.high = min(self.ticks[0], values[0]), max(self.ticks[-1], values[1])
        if self.high <= self.low:
            self.high = self.low + 1
        self.first, self.last = years

    def px(self, year: np.ndarray | float) -> np.ndarray | float:
        return self.x + (np.asarray(year) - self.first) / max(self.last - self.first, 1e-9) * self.width

    def py(self, value: np.ndarray | float) -> np.ndarray | float:
        return self.y + self.height - (np.asarray(value) - self.low) / (self.high - self.low) * self.height

    def axes(self) -> str:
        parts = []
        for tick in self.ticks:
            y = self.py(tick)
            parts.append(f'<line x1="{self.x:.1f}" x2="{self.x + self.width:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{GRID}"/>')
            parts.append(f'<text x="{self.x - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{esc(number(tick))}</text>')
        span = self.last - self.first
        step = next(s for s in (1, 2, 5, 10, 20, 50) if span / s <= 8)
        year = math.ceil(self.first / step) * step
        bottom = self.y + self.height
        parts.append(f'<line x1="{self.x:.1f}" x2="{self.x + self.width:.1f}" y1="{bottom:.1f}" y2="{bottom:.1f}" '
                     f'stroke="#9aa5b1"/>')
        while year <= self.last + 1e-9:
            x = self.px(year)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom:.1f}" y2="{bottom + 4:.1f}" stroke="#9aa5b1"/>')
            parts.append(f'<text x="{x:.1f}" y="{bottom + 16:.1f}" text-anchor="middle">{year}</text>')
            year += step
        return "".join(parts)

    def band(self, years: np.ndarray, low: np.ndarray, high: np.ndarray, opacity: float) -> str:
        xs = self.px(years)
        top = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, self.py(high), strict=True))
        under = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs[::-1], self.py(low)[::-1], strict=True))
        return f'<polygon points="{top} {under}" fill="{FAN}" fill-opacity="{opacity}" stroke="none"/>'

    def line(self, years: np.ndarray, values: np.ndarray) -> str:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(self.px(years), self.py(values), strict=True))
        return f'<polyline points="{points}" fill="none" stroke="{FAN}" stroke-width="2"/>'


def _fan(frame: Frame, series: Fan) -> str:
    """Bands and the middle line, broken where the outcome is undefined (e.g. a share of nobody)."""
    years = _years(series.times)
    finite = np.isfinite(series.values).all(axis=0)
    parts = []
    for run in np.split(np.arange(len(years)), np.flatnonzero(np.diff(finite.astype(int))) + 1):
        if not finite[run[0]]:
            continue
        q05, q25, q50, q75, q95 = series.values[:, run]
        parts.append(frame.band(years[run], q05, q95, 0.18) + frame.band(years[run], q25, q75, 0.38)
                     + frame.line(years[run], q50))
    return "".join(parts)


def _observations(frame: Frame, observations: Sequence[ObservationRow], fit_until: str) -> str:
    if not observations:
        return ""
    parts = []
    cutoff = float(_years(np.array([np.datetime64(fit_until, "M")]))[0])
    if frame.first < cutoff < frame.last:
        x = frame.px(cutoff)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.y:.1f}" y2="{frame.y + frame.height:.1f}" '
                     f'stroke="#9aa5b1" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x + 3:.1f}" y="{frame.y + 10:.1f}" fill="{MUTED}" font-size="10">fitted up to here'
                     "</text>")
    for row in observations:
        x = frame.px(float(_years(np.array([np.datetime64(row.date, "M")]))[0]))
        low = row.value if row.low is None else row.low
        high = row.value if row.high is None else row.high
        color = INK if row.fitted else LATER
        fill = color if row.fitted else "#fff"
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.py(low):.1f}" y2="{frame.py(high):.1f}" '
                     f'stroke="{color}" stroke-width="1.2"/>')
        y = frame.py(row.value)
        shape = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4"' if row.fitted else
                 f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" transform="rotate(45 {x:.1f} '
                 f'{y:.1f})"')
        parts.append(f'{shape} fill="{fill}" stroke="{color}" stroke-width="1.5"><title>{esc(row.date)}: '
                     f'{esc(number(row.value))}</title>{"</circle>" if row.fitted else "</rect>"}')
    return "".join(parts)


def _legend(y: float, observations: Sequence[ObservationRow]) -> str:
    items = [(f'<rect width="14" height="9" fill="{FAN}" fill-opacity="0.18"/>', "9 in 10 runs"),
             (f'<rect width="14" height="9" fill="{FAN}" fill-opacity="0.5"/>', "half of runs"),
             (f'<line x1="0" x2="14" y1="5" y2="5" stroke="{FAN}" stroke-width="2"/>', "middle run")]
    if any(o.fitted for o in observations):
        items.append((f'<circle cx="7" cy="5" r="4" fill="{INK}"/>', "record, used to fit"))
    if any(not o.fitted for o in observations):
        items.append((f'<rect x="3.5" y="1.5" width="7" height="7" fill="#fff" stroke="{LATER}" stroke-width="1.5" '
                      'transform="rotate(45 7 5)"/>', "record, later"))
    parts, x = [], float(MARGIN_LEFT - 40)
    for mark, text in items:
        parts.append(f'<g transform="translate({x:.1f},{y:.1f})">{mark}<text x="18" y="9">{esc(text)}</text></g>')
        x += 26 + 6.2 * len(text)
    return "".join(parts)


def fan_svg(outcome: OutcomeSummary, observations: Sequence[ObservationRow], fit_until: str,
            panels: int = 6) -> str:
    """An outcome over time as an <svg>: one panel, or the largest strata as small multiples."""
    keys = [""] if not outcome.by else largest_strata(outcome, panels)
    columns = 1 if len(keys) == 1 else 2
    rows = -(-len(keys) // columns)
    width = WIDTH if columns == 1 else 2 * WIDTH - 40
    panel_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM if columns == 1 else 130
    gap = 0 if columns == 1 else 46
    height = MARGIN_TOP + rows * panel_height + (rows - 1) * gap + MARGIN_BOTTOM + (16 if columns > 1 else 0)
    panel_width = (width - MARGIN_LEFT - MARGIN_RIGHT - (columns - 1) * (MARGIN_LEFT + 10)) / columns
    title = strata_title(outcome, len(keys))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" font-size="11" '
             f'font-family="system-ui, DejaVu Sans, sans-serif" fill="{INK}">',
             f'<text x="6" y="18" font-size="13" font-weight="bold">{esc(title)}</text>']
    for k, key in enumerate(keys):
        series = outcome.fans[key]
        years = _years(series.times)
        chosen = observations if not outcome.by else []
        finite = series.values[np.isfinite(series.values)]
        values = [float(finite.min()), float(finite.max())] if finite.size else [0.0, 1.0]
        values += [v for o in chosen for v in (o.value, o.low, o.high) if v is not None]
        low = min(0.0, min(values))
        x = MARGIN_LEFT + (k % columns) * (panel_width + MARGIN_LEFT + 10)
        y = MARGIN_TOP + (k // columns) * (panel_height + gap) + (16 if columns > 1 else 0)
        frame = Frame(x, y, panel_width, panel_height, (float(years[0]), float(years[-1])), (low, max(values)))
        if key:
            parts.append(f'<text x="{x:.1f}" y="{y - 6:.1f}" font-weight="600">{esc(key)}</text>')
        parts.append(frame.axes() + _fan(frame, series) + _observations(frame, chosen, fit_until))
    parts.append(_legend(height - 16, observations if not outcome.by else []))
    parts.append("</svg>")
    return "".join(parts)

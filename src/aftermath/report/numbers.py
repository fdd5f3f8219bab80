"""Numbers as a policymaker reads them: rounded to what the model can tell apart, ranges in words."""

from __future__ import annotations

import math

from aftermath.report.content import Band


def rounded(value: float) -> str:
    """Three significant figures for large counts (12,345 -> 12,300), two for small numbers."""
    if not math.isfinite(value):
        return "n/a"
    size = abs(value)
    if size >= 100:
        digits = 3 - math.floor(math.log10(size)) - 1
        number = round(value, digits)
        return f"{number:,.0f}".replace("-", "\u2212")
    if size >= 10:
        return f"{value:,.0f}".replace("-", "\u2212")
    if size == 0:
        return "0"
    return f"{value:.2g}".replace("-", "\u2212")


def signed(value: float) -> str:
    text = rounded(value)
    return text if text.startswith("\u2212") or text in ("0", "n/a") else f"+{text}"


def band_text(band: Band, sign: bool = False) -> tuple[str, str]:
    """(median, 'low to high') for a band; `sign` marks increases with '+' (for changes)."""
    show = signed if sign else rounded
    return show(band.median), f"{show(band.low)} to {show(band.high)}"

"""Numbers as an analyst reads them: one formatter for the terminal, the report and the dashboard.

Rules (issue 15):

- **counts** (people, groups, provinces) are whole numbers, rounded to three significant figures from
  1,000 up (12,345 -> "12,300"): the model cannot tell finer apart, and no one is 2.3 people;
- **shares** (0-1) are percentages: 0.33 -> "33%", 0.004 -> "0.4%";
- **numbers** (rates, indices, ratios) keep three significant figures and never an exponent:
  5.75e-05 -> "0.0000575";
- **differences** carry a sign: "+120", "-35", "0";
- **ranges** read "low to high", so a negative bound never looks like a dash: "-26 to -2".

A `Kind` names which rule applies; `band` gives "median (low to high)".
"""

from __future__ import annotations

import math
from typing import Literal

Kind = Literal["count", "share", "number"]
KINDS: tuple[Kind, ...] = ("count", "share", "number")
SIGNIFICANT = 3
MISSING = "n/a"
UNDEFINED = "undefined"


def _significant(value: float, digits: int = SIGNIFICANT) -> float:
    """`value` rounded to `digits` significant figures (0 stays 0)."""
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _plain(value: float, digits: int = SIGNIFICANT) -> str:
    """Fixed-point text of `value` at `digits` significant figures, with thousands separators, no exponent."""
    rounded = _significant(value, digits)
    if rounded == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    text = f"{rounded:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def number(value: float, kind: Kind = "number", signed: bool = False, digits: int = SIGNIFICANT) -> str:
    """One value as text by the rules of the module docstring.

    `kind`: "count" (whole people or groups), "share" (a 0-1 fraction, shown in percent) or "number".
    `signed`: a difference, shown with '+' when positive. `digits`: significant figures of counts from
    1,000 up and of numbers (more where a threshold must read exactly). NaN and infinities give "n/a".
    Raises ValueError for an unknown `kind`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    value = float(value)
    if not math.isfinite(value):
        return MISSING
    if kind == "count":
        whole = round(value)
        text = _plain(whole, digits) if abs(whole) >= 1000 else f"{whole:,d}"
    elif kind == "share":
        percent = value * 100
        text = (f"{percent:.0f}" if abs(percent) >= 10 or round(percent) == percent else _plain(percent, 2)) + "%"
    else:
        text = _plain(value, digits)
    if text.lstrip("-") in ("0", "0%"):
        return text.lstrip("-")
    return f"+{text}" if signed and not text.startswith("-") else text


def span(low: float, high: float, kind: Kind = "number", signed: bool = False) -> str:
    """A range as 'low to high' (never 'low-high', which misreads with negative numbers)."""
    return f"{number(low, kind, signed)} to {number(high, kind, signed)}"


def band(median: float, low: float, high: float, kind: Kind = "number", signed: bool = False,
         separator: str = " ") -> str:
    """'1,230 (1,100 to 1,380)': a median and its 5-95% band; `separator` goes before the bracket.
    'undefined' for an outcome undefined in every replicate (a NaN median, e.g. a ratio with an empty
    denominator)."""
    if math.isnan(median):
        return UNDEFINED
    return f"{number(median, kind, signed)}{separator}({span(low, high, kind, signed)})"

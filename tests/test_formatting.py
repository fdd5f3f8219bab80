"""The one number formatter (aftermath.formatting) used by the terminal, the report and the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aftermath.formatting import band, number, span

SRC = Path(__file__).resolve().parents[1] / "src" / "aftermath"


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [(0, "count", "0"), (2.3, "count", "2"), (7.6, "count", "8"), (546.5, "count", "546"), (1910, "count", "1,910"),
     (40123, "count", "40,100"), (-598.2, "count", "-598"), (0.33, "share", "33%"), (0.004, "share", "0.4%"),
     (0.0567, "share", "5.7%"), (1.0, "share", "100%"), (5.75e-05, "number", "0.0000575"), (0.3251, "number", "0.325"),
     (1234.5, "number", "1,230"), (float("nan"), "count", "n/a"), (float("inf"), "number", "n/a"),
     # by the rules above: below 10% two significant figures, from 10% whole percent (above 100% too), 0 is "0"
     (0.094, "share", "9.4%"), (1.234, "share", "123%"), (0.0, "number", "0")],
)
def test_numbers_read_as_the_kind_of_quantity(value: float, kind: str, text: str) -> None:
    assert number(value, kind) == text  # type: ignore[arg-type]


def test_ranges_read_with_to_and_differences_carry_their_sign() -> None:
    assert span(-26, -2, "count") == "-26 to -2"
    assert span(1, 2, "count") == "1 to 2"  # a range is unsigned unless asked
    assert band(-3.05, -26.4, 1, "count", signed=True) == "-3 (-26 to +1)"
    assert number(12.0, "count", signed=True) == "+12" and number(0.0, "count", signed=True) == "0"
    assert number(-0.2, "count", signed=True) == "0"  # a rounded zero has no sign
    assert band(0.33, 0.25, 0.4, "share") == "33% (25% to 40%)"
    with pytest.raises(ValueError, match="unknown kind"):
        number(1, "persons")  # type: ignore[arg-type]


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_counts_are_whole_and_numbers_have_no_exponent(value: float) -> None:
    assert re.fullmatch(r"-?[\d,]+", number(value, "count"))
    assert "e" not in number(value, "number").lower()
    assert number(value / 1e12, "number").count(".") <= 1


def test_no_command_or_report_formats_numbers_on_its_own() -> None:
    """Every number a user reads goes through aftermath.formatting: no format specs for values elsewhere."""
    spec = re.compile(r"\{[^{}]*:[,]?\.\d+[fge%]\}")
    allowed = {"progress.py": ":.0f} s", "svgchart.py": ":.1f}"}  # seconds elapsed; SVG coordinates
    offenders = []
    for path in [*(SRC / "cli").glob("*.py"), *(SRC / "report").glob("*.py"), SRC / "scenario" / "describe.py"]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if spec.search(line) and not (path.name in allowed and allowed[path.name] in line):
                offenders.append(f"{path.name}: {line.strip()}")
    assert not offenders, offenders

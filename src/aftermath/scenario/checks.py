"""Validation helpers shared by the core's rules (`validate.py`) and the sub-models' own rules.

Each raises a ScenarioError naming the field path it was given and what was expected there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from aftermath.errors import FieldPath, ScenarioError
from aftermath.scenario.evidence import known_citations
from aftermath.scenario.schema import Scenario, month_label


def one_of(names: Any) -> str:
    """'one of: a, b, c' (at most 20 names shown), for an error's `expected`."""
    names = list(names)
    more = f", ... ({len(names) - 20} more)" if len(names) > 20 else ""
    return f"one of: {', '.join(names[:20])}{more}" if names else "a name defined in the scenario (none are)"


def citable(scenario: Scenario) -> set[str]:
    """Source ids a scenario may cite: the shipped evidence, the seed articles and its own `sources`."""
    return set(known_citations()) | {entry.id for entry in scenario.sources}


def check_provenance(item: Any, path: FieldPath, cited: set[str]) -> None:
    """`item` (a Provenance) cites only known ids and has a source or an assumption."""
    for index, source in enumerate(item.sources):
        if source not in cited:
            raise ScenarioError(
                f"unknown source id {source!r}", (*path, "sources", index),
                expected="an id of evidence/sources.csv or figures.csv, a seed file name, or an "
                "entry under 'sources:'",
            )
    if not item.has_provenance:
        raise ScenarioError(
            "no source for this number", path,
            expected="'sources: [ids]' or 'assumption: <the reason>'",
        )


STEP_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def in_horizon(scenario: Scenario, month: int, path: FieldPath) -> None:
    """`month` (months since year 0) lies within the scenario's time horizon and on its step grid (the
    rule of docs/engines.md): a date between two quarterly or yearly steps is refused, never moved."""
    start, end = scenario.time.start, scenario.time.end
    if not start <= month <= end:
        raise ScenarioError(
            f"the date {month_label(month)} is outside the time horizon", path,
            expected=f"a month from {month_label(start)} to {month_label(end)}",
        )
    step = STEP_MONTHS[scenario.time.step]
    if (month - start) % step:
        before = month - (month - start) % step
        raise ScenarioError(
            f"the date {month_label(month)} falls between two steps of the {scenario.time.step}ly grid", path,
            expected=f"a date on the grid, e.g. {month_label(before)} or {month_label(before + step)} "
            f"(every {step} months from {month_label(start)})",
        )


def stratum_array(
    scenario: Scenario, value: Any, dims: list[str], default: float | None, path: FieldPath
) -> np.ndarray:
    """A scalar or a nested mapping {label: ...} in the order of `dims`, as an array over `dims`."""
    if not isinstance(value, Mapping):
        return np.full([len(scenario.dimensions[d]) for d in dims], _number(value, path))
    if not dims:
        raise ScenarioError("per-stratum values need 'dims'", path, expected="a number, or add dims")
    dim, rest = dims[0], dims[1:]
    labels = scenario.dimensions[dim]
    unknown = [key for key in value if key not in labels]
    if unknown:
        raise ScenarioError(
            f"{unknown[0]!r} is not a stratum of {dim!r}", (*path, unknown[0]),
            expected=one_of(labels),
        )
    parts = []
    for label in labels:
        if label in value:
            parts.append(stratum_array(scenario, value[label], rest, default, (*path, label)))
        elif default is not None:
            parts.append(np.full([len(scenario.dimensions[d]) for d in rest], float(default)))
        else:
            raise ScenarioError(
                f"no value for stratum {label!r} of {dim!r}", path,
                expected="a value for every stratum, or a 'default'",
            )
    return np.stack(parts)


def _number(value: Any, path: FieldPath) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{value!r} is not a number", path, expected="a number")
    if not np.isfinite(value):
        raise ScenarioError(f"{value!r} is not a finite number", path, expected="a finite number")
    return float(value)

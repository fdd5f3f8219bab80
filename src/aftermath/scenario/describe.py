"""Plain-language descriptions of a scenario's parts, for `aftermath explain` and reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aftermath.scenario.checks import stratum_array
from aftermath.scenario.evidence import known_citations
from aftermath.scenario.schema import Distribution, Parameter, Scenario
from aftermath.scenario.validate import frozen_distribution


@dataclass(frozen=True)
class ParameterRow:
    name: str
    value: str
    unit: str
    low: float
    high: float
    uncertainty: str
    sources: list[str]
    assumption: str
    description: str


def _number(value: float) -> str:
    return f"{value:.4g}"


def distribution_text(distribution: Distribution | None, fixed: str | None) -> str:
    if distribution is None:
        return f"fixed: {fixed}"
    fields = {k: v for k, v in distribution.model_dump().items() if v is not None and k not in ("type", "relative")}
    inner = ", ".join(f"{k}={_number(v)}" for k, v in fields.items())
    return f"{'x ' if distribution.relative else ''}{distribution.type}({inner})"


def parameter_range(scenario: Scenario, parameter: Parameter) -> tuple[float, float]:
    """The 5-95% range of a parameter (over all its strata); fixed parameters give their value."""
    values = stratum_array(scenario, parameter.value, list(parameter.dims), parameter.default, ())
    if parameter.distribution is None:
        return float(values.min()), float(values.max())
    low, high = frozen_distribution(parameter.distribution).ppf([0.05, 0.95])
    if parameter.distribution.relative:
        return float(values.min() * low), float(values.max() * high)
    return float(low), float(high)


def parameter_rows(scenario: Scenario) -> list[ParameterRow]:
    rows = []
    for name, parameter in scenario.parameters.items():
        values = stratum_array(scenario, parameter.value, list(parameter.dims), parameter.default, ())
        if parameter.dims:
            value = f"{_number(float(values.min()))} to {_number(float(values.max()))} by {', '.join(parameter.dims)}"
        else:
            value = _number(float(values.reshape(-1)[0]))
        low, high = parameter_range(scenario, parameter)
        rows.append(
            ParameterRow(
                name=name,
                value=value,
                unit=parameter.unit,
                low=low,
                high=high,
                uncertainty=distribution_text(parameter.distribution, parameter.fixed),
                sources=list(parameter.sources),
                assumption=(parameter.assumption or "").strip(),
                description=parameter.description.strip(),
            )
        )
    return rows


def citations(scenario: Scenario) -> dict[str, str]:
    """Full citation text of every source id the scenario uses."""
    known = {**{k: c.text for k, c in known_citations().items()}, **{s.id: s.citation for s in scenario.sources}}
    used: list[str] = []
    for part in [
        *scenario.parameters.values(),
        *scenario.schedules.values(),
        *scenario.compartments.values(),
        *scenario.events,
        *scenario.interventions.values(),
    ]:
        used.extend(part.sources)
    used.extend(o.source for o in scenario.observations)
    return {sid: known[sid] for sid in dict.fromkeys(used) if sid in known}


def initial_text(scenario: Scenario, name: str) -> str:
    initial = scenario.compartments[name].initial
    if isinstance(initial, str):
        return f"= {initial}"
    values = stratum_array(scenario, initial, list(scenario.compartments[name].dims), None, ())
    return _number(float(np.sum(values)))

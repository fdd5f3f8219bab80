"""Plain-language descriptions of a scenario's parts, for `aftermath explain` and reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aftermath.errors import ScenarioError
from aftermath.formatting import Kind, number
from aftermath.scenario.checks import stratum_array
from aftermath.scenario.evidence import known_citations, short_citation
from aftermath.scenario.expressions import Symbol, infer_unit
from aftermath.scenario.observation_model import observation_model
from aftermath.scenario.schema import Distribution, ObservationError, Parameter, Scenario, month_label
from aftermath.scenario.submodels import present
from aftermath.scenario.validate import frozen_distribution, outcome_terms
from aftermath.units import PERSONS


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


def distribution_text(distribution: Distribution | None, fixed: str | None) -> str:
    if distribution is None:
        return f"fixed: {fixed}"
    fields = {k: v for k, v in distribution.model_dump().items() if v is not None and k not in ("type", "relative")}
    inner = ", ".join(f"{k}={number(v)}" for k, v in fields.items())
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
            value = f"{number(float(values.min()))} to {number(float(values.max()))} by {', '.join(parameter.dims)}"
        else:
            value = number(float(values.reshape(-1)[0]))
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


SPREAD_UNITS = {"sigma": "sd of log(figure)", "cv": "sd / model value", "dispersion": "persons"}
"""The unit each observation error's spread is in (lognormal sigma, normal cv, negative binomial dispersion)."""


def observation_errors(scenario: Scenario) -> list[tuple[str, ObservationError]]:
    """(what, error) of every observation error the scenario's figures are scored with: its observation
    model's grades and default (the built-in model when it declares none), then each figure's own."""
    model = observation_model(scenario)
    found = [(f"observation error, grade {grade}", error) for grade, error in model.grades.items()]
    found.append(("observation error, ungraded figures", model.default))
    found += [(f"observation error of {o.outcome} {month_label(o.date)} ({o.source})", o.error)
              for o in scenario.observations if o.error is not None]
    return found


def observation_error_rows(scenario: Scenario) -> list[ParameterRow]:
    """The observation errors (`observation_errors`) as rows like the parameters': the spread, its unit,
    its declared range, the distribution, sources and assumption."""
    return [
        ParameterRow(
            name=what, value=number(error.spread), unit=SPREAD_UNITS[error.spread_name], low=error.range[0],
            high=error.range[1], uncertainty=f"{error.distribution} error, {error.spread_name}",
            sources=list(error.sources), assumption=(error.assumption or "").strip(), description="",
        )
        for what, error in observation_errors(scenario)
    ]


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
    used.extend(source for _, error in observation_errors(scenario) for source in error.sources)
    return {sid: known[sid] for sid in dict.fromkeys(used) if sid in known}


def initial_text(scenario: Scenario, name: str) -> str:
    initial = scenario.compartments[name].initial
    if isinstance(initial, str):
        return f"= {initial}"
    values = stratum_array(scenario, initial, list(scenario.compartments[name].dims), None, ())
    return number(float(np.sum(values)), "count")


# --- display names and how to show an outcome's numbers ----------------------------------------


def spaced(name: str) -> str:
    """A machine name for people when no label is given: 'returned_operational' -> 'Returned operational'."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def stratum_label(scenario: Scenario, dim: str, stratum: str) -> str:
    """The display name of a stratum (`labels:` in the scenario), else the stratum id as written."""
    return scenario.labels.get(dim, {}).get(stratum, stratum)


def compartment_label(scenario: Scenario, name: str) -> str:
    compartment = scenario.compartments.get(name)
    return compartment.label if compartment is not None and compartment.label else spaced(name)


def outcome_label(scenario: Scenario, name: str) -> str:
    outcome = scenario.outcomes.get(name)
    return outcome.label if outcome is not None and outcome.label else spaced(name)


def outcome_kind(scenario: Scenario, name: str) -> Kind:
    """How an outcome's numbers read: 'count' (people), 'share' (a ratio of people), else 'number'.

    Found from the expression's unit (compartments and flows are persons): persons -> count,
    dimensionless -> share. Raises ScenarioError for an outcome the scenario does not define.
    """
    if name not in scenario.outcomes:
        raise ScenarioError(f"unknown outcome {name!r}", ("outcomes",))
    tree, terms = outcome_terms(scenario, name)
    table = {term: Symbol(kind, PERSONS) for term, kind in terms.items()}
    unit = infer_unit(tree, table)
    if unit.persons == 1 and unit.time == 0:
        return "count"
    if unit.persons == 0 and unit.time == 0:
        return "share"
    return "number"


def outcome_quantity(scenario: Scenario, name: str) -> str:
    """Whether an outcome is a stock (people at a date), a flow (people in the step) or cumulative."""
    outcome = scenario.outcomes[name]
    _, terms = outcome_terms(scenario, name)
    if outcome_kind(scenario, name) != "count":
        return "ratio"
    if outcome.cumulative:
        return "cumulative"
    return "flow per step" if "flow" in terms.values() else "stock"


def headline_outcomes(scenario: Scenario) -> list[str]:
    """The scenario's `headline` outcomes, else every outcome that is one number (no `by`)."""
    return list(scenario.headline) or [name for name, outcome in scenario.outcomes.items() if not outcome.by]


@dataclass(frozen=True)
class Element:
    """One named part of a scenario for `aftermath explain NAME`: its kind, display name and facts."""

    kind: str
    name: str
    label: str
    facts: list[tuple[str, str]]


def provenance(item: Any) -> list[tuple[str, str]]:
    facts = [("sources", ", ".join(short_citation(s) for s in item.sources))] if item.sources else []
    return facts + ([("assumption", item.assumption.strip())] if item.assumption else [])


def elements(scenario: Scenario) -> dict[str, Element]:
    """Every named part of a scenario (dimensions, strata, compartments, boundaries, parameters, schedules,
    flows, events, interventions, outcomes, the parts of sub-model sections (network groups), sources)
    by name; the first kind wins a name."""
    found: dict[str, Element] = {}

    def add(kind: str, name: str, label: str, facts: list[tuple[str, str]]) -> None:
        found.setdefault(name, Element(kind, name, label, [(k, v) for k, v in facts if v]))

    for dim, strata in scenario.dimensions.items():
        add("dimension", dim, dim, [("strata", ", ".join(f"{s} ({stratum_label(scenario, dim, s)})"
                                                         if stratum_label(scenario, dim, s) != s else s
                                                         for s in strata))])
        for stratum in strata:
            add("stratum", stratum, stratum_label(scenario, dim, stratum), [("dimension", dim)])
    for name, c in scenario.compartments.items():
        add("compartment", name, compartment_label(scenario, name),
            [("description", c.description.strip()), ("strata", ", ".join(c.dims)),
             ("initial", initial_text(scenario, name)), ("pathway", c.pathway or ""), *provenance(c)])
    for name, b in scenario.boundaries.items():
        add("boundary", name, spaced(name), [("kind", b.kind), ("description", b.description.strip())])
    rows = {row.name: row for row in parameter_rows(scenario)}
    for name, p in scenario.parameters.items():
        row = rows[name]
        add("parameter", name, spaced(name),
            [("description", row.description), ("value", row.value), ("unit", row.unit),
             ("5-95% range", f"{number(row.low)} to {number(row.high)}"), ("uncertainty", row.uncertainty),
             *provenance(p)])
    for name, s in scenario.schedules.items():
        points = ", ".join(f"{k}: {number(v)}" for k, v in s.points.items())
        add("schedule", name, spaced(name), [("description", s.description.strip()), ("unit", s.unit),
                                             ("interpolation", s.interpolation), ("points", points), *provenance(s)])
    for f in scenario.flows:
        add("flow", f.name, spaced(f.name), [("description", f.description.strip()),
                                             ("from -> to", f"{f.from_} -> {f.to}"), ("rate", str(f.rate))])
    for e in scenario.events:
        add("event", e.name, spaced(e.name), [("description", e.description.strip()), ("date", month_label(e.date)),
                                              ("from -> to", f"{e.from_} -> {e.to}"), ("fraction", str(e.fraction)),
                                              *provenance(e)])
    for name, i in scenario.interventions.items():
        effects = "; ".join(f"{x.parameter or x.schedule} {x.operation[0]} {number(x.operation[1])}"
                            for x in i.effects)
        add("intervention", name, spaced(name),
            [("description", i.description.strip()), ("from", month_label(i.start)),
             ("until", month_label(i.end) if i.end is not None else ""), ("strength", number(i.strength)),
             ("effects", effects), *provenance(i)])
    for name, o in scenario.outcomes.items():
        add("outcome", name, outcome_label(scenario, name),
            [("description", o.description.strip()), ("expression", str(o.expr)),
             ("quantity", f"{outcome_quantity(scenario, name)}, {outcome_kind(scenario, name)}"),
             ("by", ", ".join(o.by)), ("select", "; ".join(f"{d}: {', '.join(v)}" for d, v in o.select.items())),
             ("headline", "yes" if name in headline_outcomes(scenario) else "")])
    for submodel in present(scenario):
        for kind, name, label, facts in submodel.describe(scenario):
            add(kind, name, label, facts)
    for sid, text in citations(scenario).items():
        add("source", sid, sid, [("citation", text)])
    return found

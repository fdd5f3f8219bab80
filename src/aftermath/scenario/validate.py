"""Rules that relate a scenario's fields to each other; each failure names its field path.

The helpers here (`symbols`, `flow_context`, `parsed`) and in `checks.py` (`stratum_array`) are also
what the model compiler uses, so a scenario that validates is one that compiles. Sections owned by
sub-models are checked by the sub-models' own rules (see `submodels.py`).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from aftermath.errors import FieldPath, ScenarioError
from aftermath.scenario.checks import STEP_MONTHS, check_provenance, citable, in_horizon, one_of, stratum_array
from aftermath.scenario.expressions import (
    FUNCTIONS,
    ExpressionError,
    Symbol,
    check_names,
    infer_unit,
    names_in,
    parse_expression,
)
from aftermath.scenario.observation_model import error_of
from aftermath.scenario.schema import (
    Distribution,
    ObservationError,
    Parameter,
    Scenario,
    month_label,
    parse_month,
)
from aftermath.scenario.submodels import present
from aftermath.units import (
    DIMENSIONLESS,
    PER_TIME,
    PERSONS,
    PERSONS_PER_TIME,
    TIME,
    VOCABULARY,
    Unit,
    is_probability_unit,
    parse_unit,
)

#: Names every expression may use besides the scenario's own: months since the start.
TIME_SYMBOL = "t"
RESERVED = {TIME_SYMBOL, *FUNCTIONS, "and", "or", "not", "entered", "exited", "replicate", "time"}
#: More people than live on Earth: a count above this is a slip (a wrong unit, a misplaced exponent).
MAX_PERSONS = 1e10


def validate_scenario(scenario: Scenario) -> None:
    """Run every cross-field rule; raise the first ScenarioError found, in file order."""
    _check_time(scenario)
    _check_dimensions(scenario)
    _check_unique_names(scenario)
    for index, month in enumerate(scenario.key_dates):
        in_horizon(scenario, month, ("key_dates", index))
    cited = citable(scenario)
    for name, parameter in scenario.parameters.items():
        _check_parameter(scenario, name, parameter, cited)
    for name, schedule in scenario.schedules.items():
        where: FieldPath = ("schedules", name)
        _unit(schedule.unit, (*where, "unit"))
        check_provenance(schedule, where, cited)
        months = {}
        for key, value in schedule.points.items():
            check_in_domain(np.asarray(value), schedule.unit, (*where, "points", key))
            month = _month(key, (*where, "points", key))
            in_horizon(scenario, month, (*where, "points", key))
            if month in months:
                raise ScenarioError(
                    f"the month {month_label(month)} is given twice", (*where, "points", key),
                    expected="each month once",
                )
            months[month] = key
    for name, compartment in scenario.compartments.items():
        where = ("compartments", name)
        _check_dims_exist(scenario, compartment.dims, (*where, "dims"))
        _check_initial(scenario, name, cited)
    for submodel in present(scenario):
        submodel.validate(scenario)
    table = symbols(scenario)
    for index in range(len(scenario.flows)):
        _check_flow(scenario, index, table)
    for index in range(len(scenario.events)):
        _check_event(scenario, index, table, cited)
    for name in scenario.interventions:
        _check_intervention(scenario, name, cited)
    for name in scenario.outcomes:
        outcome_terms(scenario, name)
    if scenario.observation_model is not None:
        where = ("observation_model",)
        for grade, error in scenario.observation_model.grades.items():
            _check_error(error, (*where, "grades", grade), cited)
        _check_error(scenario.observation_model.default, (*where, "default"), cited)
    for index, name in enumerate(scenario.headline):
        if name not in scenario.outcomes:
            raise ScenarioError(f"unknown outcome {name!r}", ("headline", index), expected=one_of(scenario.outcomes))
    for index in range(len(scenario.observations)):
        _check_observation(scenario, index, cited)


def _check_error(error: ObservationError, path: FieldPath, cited: set[str]) -> None:
    """An observation error has a source or an assumption, and its spread lies within its range."""
    check_provenance(error, path, cited)
    low, high = error.range
    if not low <= error.spread <= high:
        raise ScenarioError(
            f"the {error.spread_name} {error.spread:g} lies outside its range {low:g} to {high:g}", (*path, "range"),
            expected=f"a range that contains the {error.spread_name}",
        )


# --- helpers shared with the compiler -------------------------------------------------------


def parsed(text: str | float, path: FieldPath) -> ast.Expression:
    try:
        return parse_expression(text)
    except ExpressionError as exc:
        raise ScenarioError(str(exc), path, expected="an arithmetic expression of known names") from None


def _unit(text: str, path: FieldPath) -> Unit:
    try:
        return parse_unit(text)
    except ValueError as exc:
        raise ScenarioError(str(exc), path, expected=VOCABULARY) from None


def _month(value: Any, path: FieldPath) -> int:
    try:
        return parse_month(value)
    except ValueError as exc:
        raise ScenarioError(str(exc).split(";")[0], path, expected="a month as YYYY-MM") from None


def ordered_dims(scenario: Scenario, dims: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Dimensions in the scenario's global order, the order arrays are laid out in."""
    return tuple(d for d in scenario.dimensions if d in dims)


def symbols(scenario: Scenario) -> dict[str, Symbol]:
    """What each name in a rate expression means."""
    table: dict[str, Symbol] = {TIME_SYMBOL: Symbol("time", TIME)}
    for name, parameter in scenario.parameters.items():
        table[name] = Symbol("parameter", parse_unit(parameter.unit), ordered_dims(scenario, parameter.dims))
    for name, schedule in scenario.schedules.items():
        table[name] = Symbol("schedule", parse_unit(schedule.unit))
    for name, compartment in scenario.compartments.items():
        table[name] = Symbol("compartment", PERSONS, ordered_dims(scenario, compartment.dims))
    for submodel in present(scenario):
        table.update(submodel.symbols(scenario))
    return table


def flow_context(scenario: Scenario, index: int) -> tuple[str, ...]:
    """The strata a flow's rate is evaluated over: its origin's (or, from a source, its target's)."""
    flow = scenario.flows[index]
    holder = flow.from_ if flow.from_ in scenario.compartments else flow.to
    return ordered_dims(scenario, scenario.compartments[holder].dims)


def outcome_terms(scenario: Scenario, name: str) -> tuple[ast.Expression, dict[str, str]]:
    """An outcome's parsed expression and what each of its names is ('compartment' or 'flow')."""
    tree, kinds, _ = _outcome_parts(scenario, name)
    return tree, kinds


def outcome_unit(scenario: Scenario, name: str) -> tuple[str, float]:
    """An outcome's unit as text, and the factor from base units (persons, months) to it.

    A compartment term counts persons; a flow term counts persons per month (persons moved during
    the step, divided by its length in months), or persons in a cumulative outcome. A declared
    `unit` must have the same dimension, e.g. 'persons per year' for a rate (factor 12).
    """
    outcome = scenario.outcomes[name]
    _, _, unit = _outcome_parts(scenario, name)
    if outcome.unit is None:
        return unit.describe(), 1.0
    return outcome.unit, 1.0 / parse_unit(outcome.unit).scale


def _outcome_parts(scenario: Scenario, name: str) -> tuple[ast.Expression, dict[str, str], Unit]:
    outcome = scenario.outcomes[name]
    where: FieldPath = ("outcomes", name)
    tree = parsed(outcome.expr, (*where, "expr"))
    flows = {flow.name: flow for flow in scenario.flows}
    kinds: dict[str, str] = {}
    for dim in [*outcome.select, *outcome.by]:
        if dim not in scenario.dimensions:
            raise ScenarioError(f"unknown dimension {dim!r}", where, expected=one_of(scenario.dimensions))
    for dim, labels in outcome.select.items():
        for label in labels:
            if label not in scenario.dimensions[dim]:
                raise ScenarioError(
                    f"{label!r} is not a stratum of {dim!r}", (*where, "select", dim),
                    expected=one_of(scenario.dimensions[dim]),
                )
    table = {n: Symbol("compartment", PERSONS) for n in scenario.compartments}
    table.update({n: Symbol("flow", PERSONS if outcome.cumulative else PERSONS_PER_TIME) for n in flows})
    try:
        check_names(tree, table)
        unit = infer_unit(tree, table)
    except ExpressionError as exc:
        raise ScenarioError(
            str(exc), (*where, "expr"),
            expected="names of compartments or flows (compartments count persons; flows persons per month, "
            "or persons if cumulative)",
        ) from None
    if outcome.unit is not None and not _unit(outcome.unit, (*where, "unit")).same_dimension(unit):
        raise ScenarioError(
            f"the outcome is in {unit.describe()}, not {outcome.unit!r}", (*where, "unit"),
            expected=f"a unit of {unit.describe()}",
        )
    if not names_in(tree):
        raise ScenarioError(
            "the outcome refers to no compartment or flow", (*where, "expr"),
            expected="an expression of compartments or flows, e.g. returned_home + detained",
        )
    if outcome.cumulative:
        _check_cumulative(tree, flows, (*where, "cumulative"))
    for term in names_in(tree):
        if term in scenario.compartments:
            kinds[term], dims = "compartment", scenario.compartments[term].dims
        else:
            kinds[term] = "flow"
            dims = list(flow_context(scenario, [f.name for f in scenario.flows].index(term)))
        missing = [d for d in [*outcome.by, *outcome.select] if d not in dims]
        if missing:
            raise ScenarioError(
                f"{term!r} is not stratified by {missing[0]!r}, so it cannot be selected or kept by it",
                (*where, "expr"), expected=f"terms stratified by {', '.join(missing)}",
            )
    return tree, kinds, unit


def _check_cumulative(tree: ast.Expression, flows: Mapping[str, Any], path: FieldPath) -> None:
    """`cumulative: true` sums an outcome over time: right for flows (persons moved per step), wrong for
    stocks (a compartment counted again every step) and ratios (shares added up)."""
    stocks = [name for name in names_in(tree) if name not in flows]
    if stocks:
        raise ScenarioError(
            f"{stocks[0]!r} is a compartment (a stock): summing it over time counts the same people every step",
            path, expected="cumulative only on flows (e.g. expr: returning); a compartment already holds the total",
        )
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.USub, ast.UAdd, ast.Name, ast.Load)
    if not all(isinstance(node, allowed) for node in ast.walk(tree)):
        raise ScenarioError(
            "only a sum of flows can be cumulative: summing a ratio or product over time has no meaning", path,
            expected="cumulative on flows added or subtracted (e.g. returning + released); divide cumulative outcomes "
            "in the report instead",
        )


# --- the rules ------------------------------------------------------------------------------


MAX_HORIZON_MONTHS = 12_000
"""1,000 years, whatever the step: results grow with the number of steps (at monthly steps 12,001 time
points a run), and the engines hold a block's series in memory (see docs/engines.md)."""


def _check_time(scenario: Scenario) -> None:
    time = scenario.time
    if time.end <= time.start:
        raise ScenarioError(
            f"the end {month_label(time.end)} is not after the start {month_label(time.start)}", ("time", "end"),
            expected=f"a month after {month_label(time.start)}",
        )
    if time.end - time.start > MAX_HORIZON_MONTHS:
        raise ScenarioError(
            f"the horizon is {time.end - time.start} months long", ("time", "end"),
            expected=f"an end at most {MAX_HORIZON_MONTHS // 12:,} years ({MAX_HORIZON_MONTHS:,} months) "
            "after the start",
        )
    step = STEP_MONTHS[time.step]
    if (time.end - time.start) % step:
        raise ScenarioError(
            f"the end is not a whole number of {time.step}s after the start", ("time", "end"),
            expected=f"an end a multiple of {step} months after {month_label(time.start)}",
        )


def _check_dimensions(scenario: Scenario) -> None:
    for dim, labels in scenario.dimensions.items():
        if not labels:
            raise ScenarioError(
                "a dimension needs at least one stratum", ("dimensions", dim), expected="a list of strata"
            )
        seen = set()
        for index, label in enumerate(labels):
            if label in seen:
                raise ScenarioError(
                    f"the stratum {label!r} is listed twice", ("dimensions", dim, index), expected="each stratum once"
                )
            seen.add(label)
    for dim, groups in scenario.groups.items():
        if dim not in scenario.dimensions:
            raise ScenarioError(f"unknown dimension {dim!r}", ("groups", dim), expected=one_of(scenario.dimensions))
        grouped: dict[str, str] = {}
        for group, labels in groups.items():
            for index, label in enumerate(labels):
                if label not in scenario.dimensions[dim]:
                    raise ScenarioError(
                        f"{label!r} is not a stratum of {dim!r}", ("groups", dim, group, index),
                        expected=one_of(scenario.dimensions[dim]),
                    )
                if label in grouped:
                    raise ScenarioError(
                        f"{label!r} is already in the group {grouped[label]!r}", ("groups", dim, group, index),
                        expected="each stratum in at most one group",
                    )
                grouped[label] = group
    for dim, names in scenario.labels.items():
        if dim not in scenario.dimensions:
            raise ScenarioError(f"unknown dimension {dim!r}", ("labels", dim), expected=one_of(scenario.dimensions))
        for stratum in names:
            if stratum not in scenario.dimensions[dim]:
                raise ScenarioError(
                    f"{stratum!r} is not a stratum of {dim!r}", ("labels", dim, stratum),
                    expected=one_of(scenario.dimensions[dim]),
                )


def _check_unique_names(scenario: Scenario) -> None:
    owners: dict[str, FieldPath] = {}
    groups: list[tuple[str, list[str]]] = [
        ("dimensions", list(scenario.dimensions)),
        ("compartments", list(scenario.compartments)),
        ("boundaries", list(scenario.boundaries)),
        ("parameters", list(scenario.parameters)),
        ("schedules", list(scenario.schedules)),
        ("outcomes", list(scenario.outcomes)),
    ]
    for section, names in groups:
        for name in names:
            _claim(owners, name, (section, name))
    for section, items in (("flows", scenario.flows), ("events", scenario.events)):
        for index, item in enumerate(items):
            _claim(owners, item.name, (section, index, "name"))


def _claim(owners: dict[str, FieldPath], name: str, path: FieldPath) -> None:
    if name in RESERVED:
        raise ScenarioError(f"{name!r} is a reserved name", path, expected="another name")
    if name in owners:
        from aftermath.errors import format_path

        raise ScenarioError(
            f"the name {name!r} is already used by {format_path(owners[name])}", path,
            expected="names unique across the scenario",
        )
    owners[name] = path


def _check_dims_exist(scenario: Scenario, dims: list[str], path: FieldPath) -> None:
    for index, dim in enumerate(dims):
        if dim not in scenario.dimensions:
            raise ScenarioError(f"unknown dimension {dim!r}", (*path, index), expected=one_of(scenario.dimensions))
        if dims.index(dim) != index:
            raise ScenarioError(
                f"the dimension {dim!r} is listed twice", (*path, index), expected="each dimension once"
            )


def _check_parameter(scenario: Scenario, name: str, parameter: Parameter, cited: set[str]) -> None:
    where: FieldPath = ("parameters", name)
    _unit(parameter.unit, (*where, "unit"))
    _check_dims_exist(scenario, parameter.dims, (*where, "dims"))
    check_provenance(parameter, where, cited)
    if parameter.default is not None and not np.isfinite(parameter.default):
        raise ScenarioError(f"{parameter.default!r} is not a finite number", (*where, "default"),
                            expected="a finite number")
    values = stratum_array(scenario, parameter.value, parameter.dims, parameter.default, (*where, "value"))
    check_in_domain(values, parameter.unit, (*where, "value"))
    if parameter.distribution is not None:
        _check_distribution(parameter.distribution, values, parameter.unit, bool(parameter.dims), where)


def domain(unit: str) -> tuple[float, float, str]:
    """The values a quantity in `unit` can take, and their name: [0, 1] for a probability, [0, MAX_PERSONS]
    for persons (and persons per unit of time), [0, inf) for a rate, any finite number otherwise."""
    parsed_unit = parse_unit(unit)
    if is_probability_unit(unit):
        return 0.0, 1.0, "a probability"
    if parsed_unit.persons > 0:
        return 0.0, MAX_PERSONS, "a possible number of persons"
    if parsed_unit.same_dimension(PER_TIME):
        return 0.0, np.inf, "a rate (>= 0)"
    return -np.inf, np.inf, "a finite number"


def check_in_domain(values: np.ndarray, unit: str, path: FieldPath, what: str = "") -> None:
    """Raise ScenarioError for a value that is not finite or outside the domain of its unit (see `domain`).

    `what` starts the message (e.g. '--set x=3'); by default the offending value does.
    """
    low, high, name = domain(unit)
    values = np.asarray(values, dtype=float)
    bad = values[~(np.isfinite(values) & (values >= low) & (values <= high))]
    if not bad.size:
        return
    value = float(bad.reshape(-1)[0])
    subject = what or f"{value:g}"
    if not np.isfinite(value):
        raise ScenarioError(f"{subject} is not a finite number", path, expected="a finite number")
    if name == "a rate (>= 0)":
        raise ScenarioError(f"{subject}: a rate cannot be negative", path, expected="a value >= 0")
    expected = f"values from {low:g} to {high:g}"
    if name == "a probability":
        expected = f"values between 0 and 1 for a unit of {unit}"
    raise ScenarioError(f"{subject} is not {name}", path, expected=expected)


TAIL = float(np.finfo(float).eps)
"""Draws use quantiles from TAIL to 1 - TAIL: the range a distribution can really give."""


@dataclass(frozen=True)
class Truncated:
    """A distribution cut to [low, high] (either may be infinite), drawn by inverting its CDF on that
    interval: q -> ppf(cdf(low) + q (cdf(high) - cdf(low))); has the `ppf` and `support` used here."""

    base: Any
    low: float
    high: float

    def support(self) -> tuple[float, float]:
        low, high = self.base.support()
        return max(float(low), self.low), min(float(high), self.high)

    def mass(self) -> float:
        """The probability the untruncated distribution gives [low, high]."""
        return float(self.base.cdf(self.high) - self.base.cdf(self.low))

    def ppf(self, q: Any) -> Any:
        first = self.base.cdf(self.low)
        return np.clip(self.base.ppf(first + np.asarray(q) * self.mass()), *self.support())


def frozen_distribution(distribution: Distribution) -> Any:
    """The scipy distribution a Distribution describes (truncated to low/high for a normal or lognormal)."""
    from scipy import stats  # imported here: scipy.stats costs seconds at CLI start-up

    d = distribution
    if d.type == "uniform":
        return stats.uniform(d.low, d.high - d.low)  # type: ignore[operator]
    if d.type == "triangular":
        width = d.high - d.low  # type: ignore[operator]
        return stats.triang((d.mode - d.low) / width, d.low, width)  # type: ignore[operator]
    if d.type == "beta":
        return stats.beta(d.alpha, d.beta)
    base = stats.norm(d.mean, d.sd) if d.type == "normal" else stats.lognorm(d.sigma, scale=d.median)
    if d.low is None and d.high is None:
        return base
    return Truncated(base, -np.inf if d.low is None else d.low, np.inf if d.high is None else d.high)


def _standard_normal_ppf(p: np.ndarray) -> np.ndarray:
    """The standard normal's quantiles of probabilities strictly between 0 and 1 (`ClosedForm`)."""
    inverse = NormalDist().inv_cdf
    return np.array([inverse(value) for value in p.ravel()], dtype=float).reshape(p.shape)


def _standard_normal_cdf(x: np.ndarray) -> np.ndarray:
    """The standard normal's distribution function, 0.5 erfc(-x / sqrt 2) (`ClosedForm`)."""
    return np.array([0.5 * math.erfc(-value / math.sqrt(2.0)) for value in x.ravel()], dtype=float).reshape(x.shape)


@dataclass(frozen=True)
class ClosedForm:
    """A uniform, triangular, normal or lognormal distribution computed as scipy.stats computes it: its
    standard form (scipy's `uniform`, `triang`, `norm`, `lognorm`), shifted by `loc` and scaled by `scale`
    with `rv_continuous`'s rules for `support`, `ppf` and `cdf` (NaN for invalid parameters, the support's
    ends at q = 0 and 1). The normal's quantile and distribution functions are the standard library's
    (`statistics.NormalDist.inv_cdf`, Wichura's algorithm AS 241, and 0.5 erfc(-x / sqrt 2) with
    `math.erfc`), not scipy.special's ndtri and ndtr: the same numbers to 1e-14 in the quantiles and
    1e-10 relative in the far tails of the distribution function (tests/test_startup.py compares them
    with the frozen scipy distribution), without importing scipy, which costs over a second of CPU
    (scipy.stats) or half a second (scipy.special) at the first load of a scenario; validation needs
    only these three methods."""

    kind: Literal["uniform", "triang", "norm", "lognorm"]
    shape: float
    """triang: the mode's position c in [0, 1]; lognorm: sigma; unused otherwise."""
    loc: float
    scale: float

    def _ends(self) -> tuple[float, float]:
        return {"uniform": (0.0, 1.0), "triang": (0.0, 1.0), "norm": (-np.inf, np.inf)}.get(self.kind, (0.0, np.inf))

    def _valid(self) -> bool:
        shape_ok = {"triang": 0 <= self.shape <= 1, "lognorm": self.shape > 0}.get(self.kind, True)
        return bool(shape_ok and self.scale > 0)

    def support(self) -> tuple[float, float]:
        if not self._valid():
            return np.nan, np.nan
        low, high = self._ends()
        return low * self.scale + self.loc, high * self.scale + self.loc

    def ppf(self, q: Any) -> Any:
        q = np.asarray(q, dtype=float)
        out = np.full(q.shape, np.nan)
        if self._valid() and self.loc == self.loc:
            low, high = self.support()
            out[q == 0], out[q == 1] = low, high
            inside = (q > 0) & (q < 1)
            p, c = q[inside], self.shape
            standard = {
                "uniform": lambda: p,
                "triang": lambda: np.where(p < c, np.sqrt(c * p), 1 - np.sqrt((1 - c) * (1 - p))),
                "norm": lambda: _standard_normal_ppf(p),
                "lognorm": lambda: np.exp(c * _standard_normal_ppf(p)),
            }[self.kind]()
            out[inside] = standard * self.scale + self.loc
        return out[()] if out.ndim == 0 else out

    def cdf(self, x: Any) -> Any:
        """For a normal or a lognormal (the distributions that can be truncated)."""
        x = np.asarray((np.asarray(x, dtype=float) - self.loc) / self.scale, dtype=float)
        out = np.zeros(x.shape)
        if not self._valid():
            return np.full(x.shape, np.nan)[()]
        low, high = self._ends()
        out[np.isnan(x)] = np.nan
        out[x >= high] = 1.0
        inside = (x > low) & (x < high)
        standard = x[inside] if self.kind == "norm" else np.log(x[inside]) / self.shape
        out[inside] = _standard_normal_cdf(standard)
        return out[()] if out.ndim == 0 else out


def checked_distribution(distribution: Distribution) -> Any:
    """What validation reads of a distribution (`support`, `ppf`, and `mass` when truncated): the
    `frozen_distribution`'s numbers, in closed form where scipy.stats' formulas are short (`ClosedForm`);
    a beta is frozen by scipy.stats."""
    d = distribution
    if d.type == "beta":
        return frozen_distribution(d)
    if d.type == "uniform":
        return ClosedForm("uniform", 0.0, d.low, d.high - d.low)  # type: ignore[arg-type, operator]
    if d.type == "triangular":
        width = d.high - d.low  # type: ignore[operator]
        return ClosedForm("triang", (d.mode - d.low) / width, d.low, width)  # type: ignore[arg-type, operator]
    if d.type == "normal":
        base = ClosedForm("norm", 0.0, d.mean, d.sd)  # type: ignore[arg-type]
    else:
        base = ClosedForm("lognorm", d.sigma, 0.0, d.median)  # type: ignore[arg-type]
    if d.low is None and d.high is None:
        return base
    return Truncated(base, -np.inf if d.low is None else d.low, np.inf if d.high is None else d.high)


def _check_distribution(
    distribution: Distribution, values: np.ndarray, unit: str, stratified: bool, where: FieldPath
) -> None:
    path = (*where, "distribution")
    if stratified and not distribution.relative:
        raise ScenarioError(
            "a per-stratum parameter needs a relative distribution (a multiplier of its values)",
            path, expected="'relative: true' with a distribution around 1",
        )
    frozen = checked_distribution(distribution)
    with np.errstate(all="ignore"):  # extreme parameters overflow inside scipy: judged below, not warned
        mass = frozen.mass() if isinstance(frozen, Truncated) else 1.0
        low, high = frozen.support()
        drawn_low, drawn_high = (float(x) for x in frozen.ppf([TAIL, 1 - TAIL]))
    if not mass > 1e-9:
        raise ScenarioError(
            f"the truncation to {frozen.low:g}..{frozen.high:g} keeps almost none of the distribution", path,  # type: ignore[union-attr]
            expected="low and high around the bulk of the distribution",
        )
    if distribution.relative:
        if low < 0:
            raise ScenarioError(
                "a relative distribution must not go below 0", path,
                expected="a multiplier distribution on [0, inf), e.g. uniform 0.8-1.2 or lognormal",
            )
        if not low <= 1 <= high:
            raise ScenarioError("a relative distribution must contain 1", path, expected="e.g. low <= 1 <= high")
        drawn_low, drawn_high = drawn_low * float(values.min()), drawn_high * float(values.max())
    else:
        value = float(values.reshape(-1)[0])
        if not low <= value <= high:
            raise ScenarioError(
                f"the value {value:g} lies outside its distribution ({low:g} to {high:g})", path,
                expected="a distribution whose range contains the value",
            )
    allowed_low, allowed_high, name = domain(unit)
    if is_probability_unit(unit) and not distribution.relative and (low < 0 or high > 1):
        raise ScenarioError(
            f"the distribution reaches {low:g} to {high:g}, outside [0, 1]", path,
            expected="bounds within [0, 1] (uniform, triangular or beta) for a probability",
        )
    for drawn in (drawn_low, drawn_high):
        if not (np.isfinite(drawn) and allowed_low <= drawn <= allowed_high):
            what = f"can draw {drawn:g}" if np.isfinite(drawn) else "has draws beyond any finite number"
            raise ScenarioError(
                f"the distribution {what}, which is not {name}", path,
                expected=f"draws from {allowed_low:g} to {allowed_high:g}: a narrower distribution, or 'low'/'high' "
                "to truncate a normal or lognormal",
            )


def _check_initial(scenario: Scenario, name: str, cited: set[str]) -> None:
    compartment = scenario.compartments[name]
    where: FieldPath = ("compartments", name, "initial")
    initial = compartment.initial
    if isinstance(initial, str):
        parameter = scenario.parameters.get(initial)
        if parameter is None:
            raise ScenarioError(
                f"unknown parameter {initial!r}", where,
                expected="a number, a mapping per stratum, or a parameter name",
            )
        if not parse_unit(parameter.unit).same_dimension(PERSONS):
            raise ScenarioError(
                f"the parameter {initial!r} has the unit {parameter.unit!r}", where, expected="a parameter in persons"
            )
        extra = [d for d in parameter.dims if d not in compartment.dims]
        if extra:
            raise ScenarioError(
                f"the parameter {initial!r} varies by {extra[0]!r}, which {name!r} is not stratified by",
                where, expected=f"a parameter over {', '.join(compartment.dims) or 'no dimensions'}",
            )
        values = stratum_array(scenario, parameter.value, parameter.dims, parameter.default, where)
    else:
        values = stratum_array(scenario, initial, compartment.dims, None, where)
        if values.size and values.max() > 0:
            check_provenance(compartment, ("compartments", name), cited)
    if values.size and values.min() < 0:
        raise ScenarioError(f"a negative count ({values.min():g})", where, expected="counts >= 0")
    if values.size and values.max() > MAX_PERSONS:
        raise ScenarioError(
            f"a count of {values.max():g} is more people than live on Earth", where,
            expected=f"counts up to {MAX_PERSONS:g}",
        )


def _check_flow(scenario: Scenario, index: int, table: dict[str, Symbol]) -> None:
    flow = scenario.flows[index]
    where: FieldPath = ("flows", index)
    places = {n: "compartment" for n in scenario.compartments}
    places.update({n: b.kind for n, b in scenario.boundaries.items()})
    for key, target in (("from", flow.from_), ("to", flow.to)):
        if target not in places:
            raise ScenarioError(
                f"unknown compartment {target!r}", (*where, key),
                expected=one_of(places) + " (a compartment or a declared boundary)",
            )
    kind_from, kind_to = places[flow.from_], places[flow.to]
    if kind_from == "sink":
        raise ScenarioError(
            f"{flow.from_!r} is a sink: people cannot leave it", (*where, "from"), expected="a compartment or a source"
        )
    if kind_to == "source":
        raise ScenarioError(
            f"{flow.to!r} is a source: people cannot enter it", (*where, "to"), expected="a compartment or a sink"
        )
    if kind_from == "source" and kind_to == "sink":
        raise ScenarioError(
            "a flow from a source straight to a sink moves no one", where, expected="a compartment at one end"
        )
    if flow.from_ == flow.to:
        raise ScenarioError(
            "a flow must go to another compartment", (*where, "to"), expected=f"not {flow.from_!r}"
        )
    if kind_from == "compartment" and kind_to == "compartment":
        _check_subset(scenario, flow.from_, flow.to, (*where, "to"))
    context = flow_context(scenario, index)
    expected_unit = PERSONS_PER_TIME if kind_from == "source" else PER_TIME
    what = "persons per unit of time (an inflow from a source)" if kind_from == "source" else (
        "a per-capita hazard, per unit of time (e.g. a parameter in 'per year')"
    )
    _check_expression(flow.rate, (*where, "rate"), table, context, expected_unit, what)


def _check_subset(scenario: Scenario, origin: str, target: str, path: FieldPath) -> None:
    from_dims = scenario.compartments[origin].dims
    to_dims = scenario.compartments[target].dims
    extra = [d for d in to_dims if d not in from_dims]
    if extra:
        raise ScenarioError(
            f"{target!r} is stratified by {extra[0]!r} but {origin!r} is not, so people cannot be "
            "placed in its strata", path,
            expected=f"a target whose dimensions are among: {', '.join(from_dims) or 'none'}",
        )


def _check_expression(
    text: str | float, path: FieldPath, table: dict[str, Symbol], context: tuple[str, ...],
    unit: Unit, what: str,
) -> None:
    tree = parsed(text, path)
    try:
        check_names(tree, table)
        found = infer_unit(tree, table)
    except ExpressionError as exc:
        raise ScenarioError(str(exc), path, expected=what) from None
    if not found.same_dimension(unit) and not (isinstance(tree.body, ast.Constant) and tree.body.value == 0):
        raise ScenarioError(f"the unit of the expression is {found.describe()}", path, expected=what)
    for name in names_in(tree):
        symbol = table[name]
        if symbol.kind in ("parameter", "coupling"):
            extra = [d for d in symbol.dims if d not in context]
            if extra:
                raise ScenarioError(
                    f"the {symbol.kind} {name!r} varies by {extra[0]!r}, which this is not stratified by",
                    path, expected=f"{symbol.kind}s over {', '.join(context) or 'no dimensions'}",
                )


def _check_event(scenario: Scenario, index: int, table: dict[str, Symbol], cited: set[str]) -> None:
    event = scenario.events[index]
    where: FieldPath = ("events", index)
    in_horizon(scenario, event.date, (*where, "date"))
    sinks = {n for n, b in scenario.boundaries.items() if b.kind == "sink"}
    if event.from_ not in scenario.compartments:
        raise ScenarioError(
            f"unknown compartment {event.from_!r}", (*where, "from"), expected=one_of(scenario.compartments)
        )
    if event.to in scenario.boundaries and event.to not in sinks:
        raise ScenarioError(
            f"{event.to!r} is a source: people cannot enter it", (*where, "to"), expected="a compartment or a sink"
        )
    if event.to not in scenario.compartments and event.to not in sinks:
        raise ScenarioError(
            f"unknown compartment {event.to!r}", (*where, "to"), expected=one_of([*scenario.compartments, *sinks])
        )
    if event.from_ == event.to:
        raise ScenarioError(
            "an event must move people to another compartment", (*where, "to"), expected=f"not {event.from_!r}"
        )
    if event.to in scenario.compartments:
        _check_subset(scenario, event.from_, event.to, (*where, "to"))
    context = ordered_dims(scenario, scenario.compartments[event.from_].dims)
    parameters_only = {n: s for n, s in table.items() if s.kind == "parameter"}
    _check_expression(
        event.fraction, (*where, "fraction"), parameters_only, context, DIMENSIONLESS,
        "a fraction between 0 and 1 (a number or parameters)",
    )
    tree = parsed(event.fraction, (*where, "fraction"))
    if isinstance(tree.body, ast.Constant):
        if not 0 <= float(tree.body.value) <= 1:
            raise ScenarioError(
                f"{tree.body.value!r} is not a fraction", (*where, "fraction"), expected="a number between 0 and 1"
            )
        check_provenance(event, where, cited)
    else:
        _check_provenance_if_given(event, where, cited)


def _check_provenance_if_given(item: Any, path: FieldPath, cited: set[str]) -> None:
    if item.sources or item.assumption:
        check_provenance(item, path, cited)


def _check_intervention(scenario: Scenario, name: str, cited: set[str]) -> None:
    intervention = scenario.interventions[name]
    where: FieldPath = ("interventions", name)
    in_horizon(scenario, intervention.start, (*where, "start"))
    if intervention.end is not None:
        in_horizon(scenario, intervention.end, (*where, "end"))
        if intervention.end < intervention.start:  # the end is the last active month: start == end is one step
            raise ScenarioError(
                f"the end {month_label(intervention.end)} comes before the start {month_label(intervention.start)}",
                (*where, "end"), expected="an end at or after the start (the end is the last month it is active)")
    check_provenance(intervention, where, cited)
    set_targets: set[str] = set()
    for index, effect in enumerate(intervention.effects):
        path = (*where, "effects", index)
        if effect.parameter is not None and effect.parameter not in scenario.parameters:
            raise ScenarioError(
                f"unknown parameter {effect.parameter!r}", (*path, "parameter"), expected=one_of(scenario.parameters)
            )
        if effect.schedule is not None and effect.schedule not in scenario.schedules:
            raise ScenarioError(
                f"unknown schedule {effect.schedule!r}", (*path, "schedule"), expected=one_of(scenario.schedules)
            )
        operation, value = effect.operation
        target = scenario.parameters[effect.parameter] if effect.parameter else scenario.schedules[effect.schedule]  # type: ignore[index]
        unit = target.unit
        if operation == "set" and is_probability_unit(unit) and not 0 <= value <= 1:
            raise ScenarioError(f"{value:g} is not a probability", (*path, "set"), expected="a value between 0 and 1")
        if operation == "multiply" and value < 0:
            raise ScenarioError("a negative multiplier", (*path, "multiply"), expected="a factor >= 0")
        name = effect.parameter or effect.schedule
        if operation == "set" and name in set_targets:
            raise ScenarioError(
                f"{name!r} is set twice by this intervention: the result would depend on the order", (*path, "set"),
                expected="one 'set' per parameter or schedule",
            )
        if operation == "set":
            set_targets.add(name)  # type: ignore[arg-type]
            check_in_domain(np.asarray(value), unit, (*path, "set"))


def _check_observation(scenario: Scenario, index: int, cited: set[str]) -> None:
    observation = scenario.observations[index]
    where: FieldPath = ("observations", index)
    if observation.outcome not in scenario.outcomes:
        raise ScenarioError(
            f"unknown outcome {observation.outcome!r}", (*where, "outcome"), expected=one_of(scenario.outcomes)
        )
    if scenario.outcomes[observation.outcome].by:
        raise ScenarioError(
            "observations compare with outcomes that are one number per date", (*where, "outcome"),
            expected="an outcome without 'by'",
        )
    in_horizon(scenario, observation.date, (*where, "date"))
    if observation.source not in cited:
        raise ScenarioError(
            f"unknown source id {observation.source!r}", (*where, "source"),
            expected="an id of evidence/sources.csv or figures.csv, a seed file name, or an entry under 'sources:'",
        )
    error = error_of(scenario, observation)
    if observation.bounds[0] == observation.bounds[1] == 0 and error.distribution == "lognormal":
        raise ScenarioError(
            "a figure of exactly 0 has no probability under a lognormal error", (*where, "value"),
            expected="kind 'up_to' (a figure under a small bound), or an 'error' that is normal or negative binomial",
        )
    if observation.error is not None:
        _check_error(observation.error, (*where, "error"), cited)
        persons = _outcome_parts(scenario, observation.outcome)[2].persons == 1
        if observation.error.distribution == "negative_binomial" and not persons:
            raise ScenarioError(
                "a negative binomial error is for counts of persons, and this outcome is not one",
                (*where, "error", "distribution"), expected="lognormal or normal for a share or a rate",
            )
    if observation.value < 0 or (observation.low is not None and observation.low < 0):
        raise ScenarioError(
            "a reported figure below 0", (*where, "value" if observation.value < 0 else "low"),
            expected="a figure >= 0 (outcomes count persons or shares)",
        )

"""Compile a validated scenario into arrays the engines run: the one place units are converted.

Layout: every array over strata is *aligned* to the scenario's global dimension order, with size 1
on the dimensions it does not vary over, and a leading replicate axis (size R, or 1 when shared).
Numpy broadcasting then combines parameters, schedules and compartments of different
stratifications with no index bookkeeping. The engines' state is one (R, cells) array, each
compartment a contiguous slice of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from aftermath.errors import ScenarioError
from aftermath.model.coupling import Coupling
from aftermath.scenario.checks import stratum_array
from aftermath.scenario.expressions import Evaluator, compile_expression
from aftermath.scenario.observation_model import error_of
from aftermath.scenario.schema import MAX_SUBSTEPS, Scenario, Schedule, month_label
from aftermath.scenario.submodels import present
from aftermath.scenario.validate import (
    STEP_MONTHS,
    TIME_SYMBOL,
    check_in_domain,
    flow_context,
    ordered_dims,
    outcome_terms,
    outcome_unit,
    parsed,
)
from aftermath.units import to_base

T = TypeVar("T")


def stable_id(text: str) -> int:
    """A 63-bit id of a name that does not change between runs, versions or machines."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


@dataclass(frozen=True)
class CompartmentLayout:
    name: str
    dims: tuple[str, ...]
    offset: int
    size: int
    aligned: tuple[int, ...]
    """Shape over all global dimensions, 1 where the compartment is not stratified."""


@dataclass(frozen=True)
class CompiledFlow:
    name: str
    source: int | None
    """Index of the compartment people leave, or None for an inflow from a source."""
    context: tuple[str, ...]
    rate: Evaluator
    rate_offset: int
    cells: int
    to_cells: np.ndarray
    """Absolute state cell each context cell's movers enter; -1 for a sink."""
    stream: int


@dataclass(frozen=True)
class CompiledEvent:
    name: str
    step: int
    source: int
    fraction: Evaluator
    to_cells: np.ndarray
    stream: int


@dataclass(frozen=True)
class CompiledOutcome:
    name: str
    by: tuple[str, ...]
    terms: dict[str, str]
    evaluate: Evaluator
    """Takes {term name: array (time, replicate, *aligned)}; returns the outcome's array."""
    select: dict[str, list[int]]
    cumulative: bool
    unit: str = "persons"
    """'persons' (stocks, cumulative counts), 'persons per month' (rates), or the declared unit."""
    factor: float = 1.0
    """From base units (persons, months) to `unit`."""


@dataclass(frozen=True)
class ActiveEffect:
    """One effect of an active policy on a parameter or a schedule, its value in base units."""

    policy: str
    kind: str
    """'parameter' or 'schedule'."""
    target: str
    first: int
    last: int
    """Steps in which it applies (both included)."""
    operation: str
    value: float
    strength: float


EFFECT_ORDER = ("set", "multiply", "add")
"""The order effects apply in, whatever order the policies were given in: sets, then multipliers, then
additions. Multipliers commute with each other and additions with each other, so the result does not
depend on the order policies are typed; two sets of one target at once are refused (`ordered_effects`)."""


@dataclass
class CompiledModel:
    """A scenario as arrays and closures; engines take it plus replicates and a seed."""

    scenario: Scenario
    scenario_hash: str
    dims: dict[str, list[str]]
    months: np.ndarray
    dt: float
    compartments: list[CompartmentLayout]
    cells: int
    flows: list[CompiledFlow]
    events: list[CompiledEvent]
    outcomes: list[CompiledOutcome]
    parameters: dict[str, np.ndarray]
    """Base values per parameter, aligned, in base units, leading axis 1 (or R for a batch)."""
    schedules: dict[str, np.ndarray]
    """Per-step value of each schedule (length steps + 1), interventions applied."""
    interventions: dict[str, float]
    """Active policies and their strengths."""
    effects: list[ActiveEffect] = field(default_factory=list)
    """The active interventions' effects, in the order they apply (see `ordered_effects`)."""
    overrides: dict[str, float] = field(default_factory=dict)
    """Parameters set on the command line (`--set`), in their declared units."""
    couplings: list[Coupling] = field(default_factory=list)
    """The scenario's sub-models, run beside the compartments (see model/coupling.py)."""
    substeps: int = 1
    """Equal sub-steps of the step engines per reporting step (each dt / substeps months long)."""
    _derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def derived(self, name: str, build: Callable[[], T]) -> T:
        """A table the engines derive from this model's arrays (flow structure, outcome matrices, rate
        epochs), built on first use and kept: calibration and the dashboard run one model thousands of
        times. The model's arrays are not changed after compilation, so a kept table never goes stale."""
        if name not in self._derived:
            self._derived[name] = build()
        return self._derived[name]

    @property
    def steps(self) -> int:
        return len(self.months) - 1

    @property
    def rate_cells(self) -> int:
        return sum(flow.cells for flow in self.flows)

    def layout(self, name: str) -> CompartmentLayout:
        return next(c for c in self.compartments if c.name == name)

    def aligned_shape(self, dims: tuple[str, ...] | list[str]) -> tuple[int, ...]:
        return tuple(len(labels) if d in dims else 1 for d, labels in self.dims.items())

    def initial_state(self, parameters: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """(R or 1, cells) initial counts, rounded to whole persons."""
        values = {**self.parameters, **(parameters or {})}
        width = max(v.shape[0] for v in values.values()) if values else 1
        state = np.zeros((width, self.cells))
        for layout in self.compartments:
            initial = self.scenario.compartments[layout.name].initial
            if isinstance(initial, str):
                block = values[initial]
            else:
                raw = stratum_array(
                    self.scenario,
                    initial,
                    list(self.scenario.compartments[layout.name].dims),
                    None,
                    ("compartments", layout.name, "initial"),
                )
                block = _align_from(raw, self.scenario.compartments[layout.name].dims, self)[None]
            block = np.broadcast_to(block, (block.shape[0], *layout.aligned))
            state[:, layout.offset : layout.offset + layout.size] = block.reshape(block.shape[0], -1)
        return np.rint(state)

    def parameter_epoch(self, step: int) -> tuple[int, ...]:
        """The indices (into `effects`) of the parameter effects in force at `step`: two steps with the same
        epoch have the same parameters (`parameters_at`)."""
        return tuple(
            k for k, e in enumerate(self.effects) if e.kind == "parameter" and e.first <= step <= e.last
        )

    def parameters_at(self, step: int, base: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Parameter arrays in force at `step`, with the active interventions' effects."""
        current = dict(base)
        for effect in self.effects:
            if effect.kind == "parameter" and effect.first <= step <= effect.last:
                current[effect.target] = apply_effect(
                    current[effect.target], effect.operation, effect.value, effect.strength
                )
        return current

    def month_label(self, step: int) -> str:
        return month_label(int(self.months[step]))


def apply_effect(base: Any, operation: str, value: float, strength: float) -> Any:
    """An intervention's change to a value at a strength (0 = no change, 1 = the full change)."""
    if operation == "multiply":
        return base * (1 + strength * (value - 1))
    if operation == "add":
        return base + strength * value
    return (1 - strength) * base + strength * value


def _align_from(values: np.ndarray, dims: list[str], model_or_dims: Any, leading: int = 0) -> np.ndarray:
    """Reorder an array over `dims` (as written) to global order and insert size-1 axes; its first
    `leading` axes (e.g. runs) stay first, as they are."""
    global_dims = list(model_or_dims.dims if hasattr(model_or_dims, "dims") else model_or_dims)
    present = [d for d in global_dims if d in dims]
    order = [*range(leading), *[leading + list(dims).index(d) for d in present]]
    values = np.transpose(values, order) if dims else values
    shape = [values.shape[leading + present.index(d)] if d in present else 1 for d in global_dims]
    return values.reshape((*values.shape[:leading], *shape))


def scenario_hash(scenario: Scenario) -> str:
    """Content hash of the validated scenario (independent of comments and formatting); what a stored
    run records of its scenario."""
    return _digest(scenario.model_dump(mode="json", by_alias=True))


PROSE_FIELDS = frozenset({"title", "description", "label", "labels", "note", "citation", "url", "assumption",
                          "fixed", "sources", "pathway"})
"""Fields of the scenario's sections that are words for people (titles, descriptions, display labels,
notes, citations, the reasons given for a number, the ids of its sources), not numbers or structure the
model runs on. A field name, not a key: a parameter or group named 'title' still counts."""


def model_hash(scenario: Scenario) -> str:
    """Content hash of what the model computes and is fitted with: the validated scenario without its
    prose (`PROSE_FIELDS`, in every section), plus the observation error each observation is scored with
    (which may come from the evidence grade of its source in figures.csv). A calibration's draws depend
    on exactly this, so a posterior made for one version of a scenario stays valid when only its words
    change, and not when a number, a name or a structure does."""
    return _digest({"scenario": _without_prose(scenario),
                    "observation_errors": [_without_prose(error_of(scenario, o)) for o in scenario.observations]})


def _without_prose(value: Any) -> Any:
    """A validated scenario (or part of one) as JSON-able data without its `PROSE_FIELDS`."""
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return {field.alias or name: _without_prose(getattr(value, name)) for name, field in fields.items()
                if name not in PROSE_FIELDS}
    if isinstance(value, dict):
        return {str(key): _without_prose(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_prose(item) for item in value]
    return to_jsonable_python(value)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def compile_model(
    scenario: Scenario,
    overrides: Mapping[str, float] | None = None,
    policies: Mapping[str, float | None] | None = None,
    substeps: int | None = None,
) -> CompiledModel:
    """Compile a scenario. `overrides` set scalar parameters (in their declared unit); `policies`
    switches interventions on, each at its given strength (None = its default strength);
    `substeps` replaces the scenario's `time.substeps` (1 to MAX_SUBSTEPS).

    Raises ScenarioError (located in the scenario's file) for an unknown parameter or policy, a bad
    value, or a sub-step count out of range.
    """
    try:
        if substeps is not None and not 1 <= substeps <= MAX_SUBSTEPS:
            raise ScenarioError(
                f"{substeps} sub-steps", ("time", "substeps"), expected=f"a whole number from 1 to {MAX_SUBSTEPS}"
            )
        model = _compile(scenario, overrides or {}, policies or {})
    except ScenarioError as exc:
        raise exc.located(scenario._source, None) from None
    model.substeps = substeps or scenario.time.substeps
    return model


def _compile(
    scenario: Scenario, overrides: Mapping[str, float], policies: Mapping[str, float | None]
) -> CompiledModel:
    dims = {d: list(labels) for d, labels in scenario.dimensions.items()}
    step = STEP_MONTHS[scenario.time.step]
    months = np.arange(scenario.time.start, scenario.time.end + 1, step)
    layouts, offset = [], 0
    for name, compartment in scenario.compartments.items():
        own = ordered_dims(scenario, compartment.dims)
        aligned = tuple(len(dims[d]) if d in own else 1 for d in dims)
        size = int(np.prod(aligned))
        layouts.append(CompartmentLayout(name, own, offset, size, aligned))
        offset += size
    parameters = _parameter_arrays(scenario, dims, overrides)
    strengths = _policy_strengths(scenario, policies)
    effects = ordered_effects(scenario, months, strengths)
    model = CompiledModel(
        scenario=scenario,
        scenario_hash=scenario_hash(scenario),
        dims=dims,
        months=months,
        dt=float(step),
        compartments=layouts,
        cells=offset,
        flows=[],
        events=[],
        outcomes=[],
        parameters=parameters,
        schedules=_schedule_arrays(scenario, months, effects),
        interventions=strengths,
        effects=effects,
        overrides=dict(overrides),
    )
    model.couplings = [submodel.couple(scenario, model) for submodel in present(scenario)]
    model.flows = _compile_flows(scenario, model)
    model.events = _compile_events(scenario, model)
    model.outcomes = [_compile_outcome(scenario, name, model) for name in scenario.outcomes]
    return model


def _parameter_arrays(
    scenario: Scenario, dims: dict[str, list[str]], overrides: Mapping[str, float]
) -> dict[str, np.ndarray]:
    for name in overrides:
        if name not in scenario.parameters:
            raise ScenarioError(
                f"--set names an unknown parameter {name!r}",
                ("parameters",),
                expected=f"one of: {', '.join(scenario.parameters)}",
            )
    arrays = {}
    for name, parameter in scenario.parameters.items():
        path = ("parameters", name, "value")
        if name in overrides:
            if parameter.dims:
                raise ScenarioError(
                    f"--set cannot replace the per-stratum parameter {name!r} by one number",
                    ("parameters", name),
                    expected="a scalar parameter",
                )
            value = float(overrides[name])
            check_in_domain(np.asarray(value), parameter.unit, path, f"--set {name}={value:g}")
            raw = np.asarray(value)
        else:
            raw = stratum_array(scenario, parameter.value, list(parameter.dims), parameter.default, path)
        arrays[name] = to_base(_align_from(raw, list(parameter.dims), dims), parameter.unit)[None]
    return arrays


def _policy_strengths(scenario: Scenario, policies: Mapping[str, float | None]) -> dict[str, float]:
    strengths = {}
    for name, strength in policies.items():
        intervention = scenario.interventions.get(name)
        if intervention is None:
            raise ScenarioError(
                f"unknown policy {name!r}",
                ("interventions",),
                expected=f"one of: {', '.join(scenario.interventions) or '(the scenario has none)'}",
            )
        value = intervention.strength if strength is None else float(strength)
        if not np.isfinite(value):
            raise ScenarioError(
                f"policy {name!r} has the strength {value!r}", ("interventions", name), expected="a finite strength"
            )
        if value < 0:
            raise ScenarioError(
                f"policy {name!r} has a negative strength", ("interventions", name), expected="a strength >= 0"
            )
        strengths[name] = value
    return strengths


def _active_steps(scenario: Scenario, name: str, months: np.ndarray) -> tuple[int, int]:
    intervention = scenario.interventions[name]
    end = intervention.end if intervention.end is not None else months[-1]
    first = int(np.searchsorted(months, intervention.start))
    last = int(np.searchsorted(months, end, side="right")) - 1
    return first, last


def ordered_effects(scenario: Scenario, months: np.ndarray, strengths: dict[str, float]) -> list[ActiveEffect]:
    """The active policies' effects in the order they apply: sets, then multipliers, then additions.

    Raises ScenarioError when two effects set the same parameter or schedule in overlapping periods:
    their result would depend on which applies last.
    """
    effects = []
    for name, strength in strengths.items():
        first, last = _active_steps(scenario, name, months)
        for effect in scenario.interventions[name].effects:
            operation, value = effect.operation
            kind, target = ("parameter", effect.parameter) if effect.parameter else ("schedule", effect.schedule)
            holder = scenario.parameters if kind == "parameter" else scenario.schedules
            base_value = value if operation == "multiply" else float(to_base(value, holder[target].unit))  # type: ignore[index]
            effects.append(ActiveEffect(name, kind, target, first, last, operation, base_value, strength))  # type: ignore[arg-type]
    sets = [e for e in effects if e.operation == "set"]
    for index, one in enumerate(sets):
        for other in sets[index + 1 :]:
            if one.target == other.target and one.first <= other.last and other.first <= one.last:
                raise ScenarioError(
                    f"policies {one.policy!r} and {other.policy!r} both set {one.target!r} in "
                    f"{month_label(int(months[max(one.first, other.first)]))}: the result would depend on their order",
                    ("interventions", other.policy),
                    expected="at most one policy setting a parameter or schedule at a time (combine them into one)",
                )
    return sorted(effects, key=lambda e: EFFECT_ORDER.index(e.operation))


def schedule_values(schedule: Schedule, months: np.ndarray) -> np.ndarray:
    """A schedule's values (in its declared unit) at month indices `months`: the last point at or before each
    month ('step'), or linear interpolation between points ('linear'); before the first point or after the
    last, the nearest point's value."""
    from aftermath.scenario.schema import parse_month

    points = sorted((parse_month(k), v) for k, v in schedule.points.items())
    at = np.array([p[0] for p in points], dtype=float)
    values = np.array([p[1] for p in points], dtype=float)
    if schedule.interpolation == "linear":
        return np.interp(months, at, values)
    return values[np.clip(np.searchsorted(at, months, side="right") - 1, 0, len(at) - 1)]


def _schedule_arrays(scenario: Scenario, months: np.ndarray, effects: list[ActiveEffect]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, schedule in scenario.schedules.items():
        arrays[name] = to_base(schedule_values(schedule, months), schedule.unit)
    for effect in effects:
        if effect.kind == "schedule":
            window = slice(effect.first, effect.last + 1)
            arrays[effect.target] = arrays[effect.target].copy()
            arrays[effect.target][window] = apply_effect(
                arrays[effect.target][window], effect.operation, effect.value, effect.strength
            )
    return arrays


def _resolver(scenario: Scenario, model: CompiledModel, context: tuple[str, ...]) -> Any:
    """Reading a name inside an expression evaluated over the strata `context`."""
    global_dims = list(model.dims)

    def resolve(name: str) -> Evaluator:
        if name == TIME_SYMBOL:
            return lambda env: env.t
        if name in scenario.parameters:
            return lambda env: env.parameters[name]
        if name in scenario.schedules:
            return lambda env: env.schedules[name]
        if name not in scenario.compartments:
            return lambda env: env.coupled[name]
        own = model.layout(name).dims
        axes = tuple(1 + global_dims.index(d) for d in own if d not in context)
        if not axes:
            return lambda env: env.compartments[name]
        return lambda env: env.compartments[name].sum(axis=axes, keepdims=True)

    return resolve


def _target_cells(model: CompiledModel, context: tuple[str, ...], target: str | None) -> np.ndarray:
    """For each cell of `context`, the absolute state cell of `target` it maps to (-1: a sink)."""
    shape = model.aligned_shape(context)
    if target is None:
        return np.full(int(np.prod(shape)), -1, dtype=np.int64)
    layout = model.layout(target)
    local = np.arange(layout.size).reshape(layout.aligned)
    return (layout.offset + np.broadcast_to(local, shape)).reshape(-1).astype(np.int64)


def _compile_flows(scenario: Scenario, model: CompiledModel) -> list[CompiledFlow]:
    names = [c.name for c in model.compartments]
    flows, offset = [], 0
    for index, flow in enumerate(scenario.flows):
        context = flow_context(scenario, index)
        tree = parsed(flow.rate, ("flows", index, "rate"))
        cells = int(np.prod(model.aligned_shape(context)))
        target = flow.to if flow.to in scenario.compartments else None
        flows.append(
            CompiledFlow(
                name=flow.name,
                source=names.index(flow.from_) if flow.from_ in scenario.compartments else None,
                context=context,
                rate=compile_expression(tree, _resolver(scenario, model, context)),
                rate_offset=offset,
                cells=cells,
                to_cells=_target_cells(model, context, target),
                stream=stable_id(f"flow:{flow.name}"),
            )
        )
        offset += cells
    return flows


def _compile_events(scenario: Scenario, model: CompiledModel) -> list[CompiledEvent]:
    names = [c.name for c in model.compartments]
    events = []
    for index, event in enumerate(scenario.events):
        context = model.layout(event.from_).dims
        tree = parsed(event.fraction, ("events", index, "fraction"))
        target = event.to if event.to in scenario.compartments else None
        events.append(
            CompiledEvent(
                name=event.name,
                step=int(np.searchsorted(model.months, event.date)),
                source=names.index(event.from_),
                fraction=compile_expression(tree, _resolver(scenario, model, context)),
                to_cells=_target_cells(model, context, target),
                stream=stable_id(f"event:{event.name}"),
            )
        )
    return events


def _compile_outcome(scenario: Scenario, name: str, model: CompiledModel) -> CompiledOutcome:
    tree, terms = outcome_terms(scenario, name)
    outcome = scenario.outcomes[name]
    select = {d: [model.dims[d].index(label) for label in labels] for d, labels in outcome.select.items()}
    unit, factor = outcome_unit(scenario, name)
    return CompiledOutcome(
        name=name,
        by=ordered_dims(scenario, outcome.by),
        terms=terms,
        evaluate=compile_expression(tree, lambda term: lambda env: env[term]),
        select=select,
        cumulative=outcome.cumulative,
        unit=unit,
        factor=factor,
    )

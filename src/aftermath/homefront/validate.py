"""Rules that relate the `home_front` section to the rest of the scenario; each failure names its field."""

from __future__ import annotations

from aftermath.errors import FieldPath, ScenarioError
from aftermath.homefront.schema import HomeFrontSpec
from aftermath.scenario.checks import citable, one_of
from aftermath.scenario.expressions import Symbol
from aftermath.scenario.schema import Scenario
from aftermath.scenario.validate import flow_context
from aftermath.units import DIMENSIONLESS, PER_TIME, PERSONS, PERSONS_PER_TIME, Unit, is_probability_unit, parse_unit

OUTPUT_DIMS = ("perpetrator", "result", "movement")
"""Dimensions of the home front's outputs; the scenario's own dimensions must not reuse them."""
_SHARE = (None, "a fraction (unit 'fraction' or 'probability')")
RATE_UNITS: dict[str, tuple[Unit | None, str]] = {
    "radicalisation": (PERSONS_PER_TIME, "persons per unit of time (e.g. 'persons per year')"),
    "mentoring": (PER_TIME, "a rate per returnee per unit of time (e.g. 'per year')"),
    "arrest": (PER_TIME, "a hazard per unit of time"),
    "disengagement": (PER_TIME, "a hazard per unit of time"),
    "death": (PER_TIME, "a hazard per unit of time"),
    "release": (PER_TIME, "a hazard per unit of time"),
    "unreformed": _SHARE,
    "plot_returnee": (PER_TIME, "plots per person per unit of time (e.g. 'per year')"),
    "plot_remobilised": (PER_TIME, "plots per person per unit of time (e.g. 'per year')"),
    "plot_home_grown": (PER_TIME, "plots per person per unit of time (e.g. 'per year')"),
    "foiling": _SHARE,
    "failure": _SHARE,
}


def home_front_symbols(scenario: Scenario) -> dict[str, Symbol]:
    """The home front adds no names to rate expressions (it reads the core, the core does not read it)."""
    return {}


def validate_home_front(scenario: Scenario) -> None:
    """Check the home_front section, if any; raise the first ScenarioError in file order."""
    spec: HomeFrontSpec | None = getattr(scenario, "home_front", None)
    if spec is None:
        return
    where: FieldPath = ("home_front",)
    for dim in OUTPUT_DIMS:
        if dim in scenario.dimensions:
            raise ScenarioError(
                f"the dimension name {dim!r} is used by the home front's outputs", ("dimensions", dim),
                expected=f"another name (reserved with a home_front: {', '.join(OUTPUT_DIMS)})",
            )
    if spec.dimension not in scenario.dimensions:
        raise ScenarioError(f"unknown dimension {spec.dimension!r}", (*where, "dimension"),
                            expected=one_of(scenario.dimensions))
    _parameter(scenario, spec, spec.initial, (*where, "initial"), PERSONS, "persons")
    _check_reach(scenario, spec)
    for kind in ("returnee", "remobilised"):
        for index, name in enumerate(getattr(spec.perpetrators, kind)):
            _compartment(scenario, spec, name, (*where, "perpetrators", kind, index))
    for field, (unit, what) in RATE_UNITS.items():
        _parameter(scenario, spec, getattr(spec.rates, field), (*where, "rates", field), unit, what)
    _check_levers(scenario, spec)
    flows = [flow.name for flow in scenario.flows]
    for index, name in enumerate(spec.arrests):
        path = (*where, "arrests", index)
        if name not in flows:
            raise ScenarioError(f"unknown flow {name!r}", path, expected=one_of(flows))
        if spec.dimension not in flow_context(scenario, flows.index(name)):
            raise ScenarioError(f"the flow {name!r} is not stratified by {spec.dimension!r}", path,
                                expected=f"a flow whose compartments are kept by {spec.dimension}")
    _check_regions(scenario, spec)
    _check_observations(scenario, spec)


def _parameter(scenario: Scenario, spec: HomeFrontSpec, name: str, path: FieldPath, unit: Unit | None,
               what: str) -> None:
    """A parameter in the right unit (unit None: a fraction), one number or by the home front's dimension."""
    parameter = scenario.parameters.get(name)
    if parameter is None:
        raise ScenarioError(f"unknown parameter {name!r}", path, expected=f"{what}: {one_of(scenario.parameters)}")
    if any(dim != spec.dimension for dim in parameter.dims):
        raise ScenarioError(
            f"the parameter {name!r} varies by {', '.join(parameter.dims)}", path,
            expected=f"{what}, one number or by {spec.dimension}",
        )
    right = is_probability_unit(parameter.unit) if unit is None else parse_unit(parameter.unit).same_dimension(unit)
    if not right:
        raise ScenarioError(f"the parameter {name!r} is in {parameter.unit}", path, expected=what)


def _schedule(scenario: Scenario, name: str, path: FieldPath) -> None:
    schedule = scenario.schedules.get(name)
    if schedule is None:
        raise ScenarioError(f"unknown schedule {name!r}", path, expected=one_of(scenario.schedules))
    if not parse_unit(schedule.unit).same_dimension(DIMENSIONLESS) or min(schedule.points.values()) < 0:
        raise ScenarioError(f"the schedule {name!r} is not a dimensionless level >= 0", path,
                            expected="a dimensionless schedule with values >= 0")


def _compartment(scenario: Scenario, spec: HomeFrontSpec, name: str, path: FieldPath,
                 stratified: bool = True) -> None:
    compartment = scenario.compartments.get(name)
    if compartment is None:
        raise ScenarioError(f"unknown compartment {name!r}", path, expected=one_of(scenario.compartments))
    if stratified and spec.dimension not in compartment.dims:
        raise ScenarioError(f"the compartment {name!r} is not kept by {spec.dimension!r}", path,
                            expected=f"a compartment with dims including {spec.dimension}")


def _check_reach(scenario: Scenario, spec: HomeFrontSpec) -> None:
    where: FieldPath = ("home_front", "reach")
    _schedule(scenario, spec.reach.media, (*where, "media"))
    for index, name in enumerate(spec.reach.strength):
        _compartment(scenario, spec, name, (*where, "strength", index), stratified=False)
    _parameter(scenario, spec, spec.reach.reference, (*where, "reference"), PERSONS, "persons")
    _parameter(scenario, spec, spec.reach.elasticity, (*where, "elasticity"), DIMENSIONLESS, "a dimensionless exponent")
    if spec.reach.call is not None:
        _schedule(scenario, spec.reach.call, (*where, "call"))
    for field in ("reference", "elasticity"):
        if scenario.parameters[getattr(spec.reach, field)].dims:
            raise ScenarioError("expected one number", (*where, field), expected="a parameter without dims")


def _check_levers(scenario: Scenario, spec: HomeFrontSpec) -> None:
    levers = spec.levers
    where: FieldPath = ("home_front", "levers")
    if levers.capacity is not None:
        _parameter(scenario, spec, levers.capacity, (*where, "capacity"), DIMENSIONLESS, "an index from 0 to 1")
    if levers.vigilance is not None:
        _schedule(scenario, levers.vigilance, (*where, "vigilance"))
    for index, name in enumerate(levers.effort):
        _parameter(scenario, spec, name, (*where, "effort", index), DIMENSIONLESS, "a dimensionless ratio")
    if levers.appeal is not None:
        _parameter(scenario, spec, levers.appeal, (*where, "appeal"), DIMENSIONLESS, "a dimensionless ratio")
    if levers.rehabilitation is not None:
        _parameter(scenario, spec, levers.rehabilitation, (*where, "rehabilitation"), None, _SHARE[1])


def _check_regions(scenario: Scenario, spec: HomeFrontSpec) -> None:
    labels = scenario.dimensions[spec.dimension]
    owner: dict[str, str] = {}
    for region, members in spec.regions.items():
        for index, label in enumerate(members):
            path: FieldPath = ("home_front", "regions", region, index)
            if label not in labels:
                raise ScenarioError(f"{label!r} is not a stratum of {spec.dimension!r}", path, expected=one_of(labels))
            if label in owner:
                raise ScenarioError(f"{label!r} is in two regions ({owner[label]!r} and {region!r})", path,
                                    expected="each stratum in one region")
            owner[label] = region
    missing = [label for label in labels if label not in owner]
    if missing:
        raise ScenarioError(f"{missing[0]!r} is in no region", ("home_front", "regions"),
                            expected=f"every stratum of {spec.dimension} in one region")


def _check_observations(scenario: Scenario, spec: HomeFrontSpec) -> None:
    cited = citable(scenario)
    first, last = scenario.time.start // 12, scenario.time.end // 12
    for index, observation in enumerate(spec.observations):
        path: FieldPath = ("home_front", "observations", index)
        if observation.region not in spec.regions:
            raise ScenarioError(f"unknown region {observation.region!r}", (*path, "region"),
                                expected=one_of(spec.regions))
        if not first <= observation.year <= last:
            raise ScenarioError(f"the year {observation.year} is outside the time horizon", (*path, "year"),
                                expected=f"a year from {first} to {last}")
        if observation.source not in cited:
            raise ScenarioError(
                f"unknown source id {observation.source!r}", (*path, "source"),
                expected="an id of evidence/sources.csv or figures.csv, a seed file name, or an entry under 'sources:'",
            )

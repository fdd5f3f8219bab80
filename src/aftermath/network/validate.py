"""Rules that relate the `network` section to the rest of the scenario; each failure names its field."""

from __future__ import annotations

from aftermath.errors import FieldPath, ScenarioError
from aftermath.network.schema import NetworkSpec
from aftermath.scenario.checks import check_provenance, citable, in_horizon, one_of, stratum_array
from aftermath.scenario.expressions import Symbol
from aftermath.scenario.schema import Scenario, month_label
from aftermath.units import DIMENSIONLESS, PER_TIME, Unit, is_probability_unit, parse_unit

EXPOSED = ("affiliate_attraction", "affiliate_active", "affiliate_lethality")
"""Per theatre T the network gives rate expressions `affiliate_attraction_T` (and the others)."""
OUTPUT_DIMS = ("group", "tie", "ending", "theatre")
"""Dimensions of the network's outputs; the scenario's own dimensions must not reuse them."""

_RATE = (PER_TIME, "a hazard per unit of time (e.g. 'per year')")
_RATIO = (DIMENSIONLESS, "a dimensionless ratio")
_SHARE = (None, "a fraction (unit 'fraction' or 'probability')")
DYNAMICS_UNITS = {
    "formation": _RATE,
    "dissolution": _RATE,
    "termination": _RATE,
    "ally_hazard_ratio": _RATIO,
    "lethality_per_tie": _RATIO,
    "territorial_dependence": _SHARE,
    "decapitation_termination": _SHARE,
    "decapitation_capacity_loss": _SHARE,
    "strength_elasticity": _RATIO,
}


def validate_network(scenario: Scenario) -> None:
    """Check the network section, if any; raise the first ScenarioError in file order."""
    network = scenario.network
    if network is None:
        return
    where: FieldPath = ("network",)
    cited = citable(scenario)
    for dim in OUTPUT_DIMS:
        if dim in scenario.dimensions:
            raise ScenarioError(
                f"the dimension name {dim!r} is used by the network's outputs", ("dimensions", dim),
                expected=f"another name (reserved with a network: {', '.join(OUTPUT_DIMS)})",
            )
    for name, group in network.groups.items():
        path = (*where, "groups", name)
        check_provenance(group, path, cited)
        if isinstance(group.territory, str):
            _check_territory_schedule(scenario, group.territory, (*path, "territory"))
        if group.territory is not None and network.dynamics.territorial_dependence is None:
            raise ScenarioError(
                "a group holds territory but the dynamics name no territorial_dependence", (*path, "territory"),
                expected="'territorial_dependence: <a fraction parameter>' under network.dynamics",
            )
    _check_ties(scenario, network, cited)
    _check_dynamics(scenario, network)
    if network.dynamics_from is not None:
        in_horizon(scenario, network.dynamics_from, (*where, "dynamics_from"))
    _check_events(scenario, network, cited)
    if network.affiliates is not None:
        _check_affiliates(scenario, network)


def _group(network: NetworkSpec, name: str, path: FieldPath) -> None:
    if name not in network.groups:
        raise ScenarioError(f"unknown group {name!r}", path, expected=one_of(network.groups))


def _check_territory_schedule(scenario: Scenario, name: str, path: FieldPath) -> None:
    schedule = scenario.schedules.get(name)
    if schedule is None:
        raise ScenarioError(
            f"unknown schedule {name!r}", path,
            expected="a share of peak territory between 0 and 1, or " + one_of(scenario.schedules),
        )
    if not parse_unit(schedule.unit).same_dimension(DIMENSIONLESS):
        raise ScenarioError(f"the schedule {name!r} is in {schedule.unit}", path, expected="a dimensionless schedule")
    values = list(schedule.points.values())
    if min(values) < 0 or max(values) > 1:
        raise ScenarioError(
            f"the schedule {name!r} reaches {min(values):g} to {max(values):g}", path,
            expected="a share of peak territory, between 0 and 1",
        )


def _check_ties(scenario: Scenario, network: NetworkSpec, cited: set[str]) -> None:
    seen: dict[frozenset[str], int] = {}
    for index, tie in enumerate(network.ties):
        path: FieldPath = ("network", "ties", index)
        for side, name in enumerate(tie.groups):
            _group(network, name, (*path, "groups", side))
        if tie.groups[0] == tie.groups[1]:
            raise ScenarioError("a tie joins two different groups", (*path, "groups"))
        pair = frozenset(tie.groups)
        if pair in seen:
            raise ScenarioError(
                f"the groups {tie.groups[0]!r} and {tie.groups[1]!r} are tied twice (also ties[{seen[pair]}])",
                (*path, "groups"), expected="one tie per pair of groups",
            )
        seen[pair] = index
        if tie.start > scenario.time.end:
            raise ScenarioError(
                f"the tie starts in {month_label(tie.start)}, after the time horizon", (*path, "start"),
                expected=f"a month up to {month_label(scenario.time.end)}",
            )
        check_provenance(tie, path, cited)


def _parameter(scenario: Scenario, name: str, path: FieldPath, unit: Unit | None, what: str) -> None:
    """A scalar parameter in the right unit (unit None: a fraction)."""
    parameter = scenario.parameters.get(name)
    if parameter is None:
        raise ScenarioError(f"unknown parameter {name!r}", path, expected=f"{what}: {one_of(scenario.parameters)}")
    if parameter.dims:
        raise ScenarioError(
            f"the parameter {name!r} varies by {', '.join(parameter.dims)}", path, expected=f"{what}, one number",
        )
    right = is_probability_unit(parameter.unit) if unit is None else parse_unit(parameter.unit).same_dimension(unit)
    if not right:
        raise ScenarioError(f"the parameter {name!r} is in {parameter.unit}", path, expected=what)


def _check_dynamics(scenario: Scenario, network: NetworkSpec) -> None:
    dynamics = network.dynamics
    where: FieldPath = ("network", "dynamics")
    for field, (unit, what) in DYNAMICS_UNITS.items():
        name = getattr(dynamics, field)
        if name is not None:
            _parameter(scenario, name, (*where, field), unit, what)
    for ending, name in dynamics.endings.items():
        _parameter(scenario, name, (*where, "endings", ending), None, "a fraction (the share of ends)")
    if dynamics.endings:
        total = sum(float(stratum_array(scenario, scenario.parameters[n].value, [], None, ()))
                    for n in dynamics.endings.values())
        if total <= 0:
            raise ScenarioError("the shares of endings sum to 0", (*where, "endings"), expected="shares summing to 1")


def _check_events(scenario: Scenario, network: NetworkSpec, cited: set[str]) -> None:
    names: set[str] = set()
    for index, event in enumerate(network.events):
        path: FieldPath = ("network", "events", index)
        if event.name in names:
            raise ScenarioError(f"the event name {event.name!r} is used twice", (*path, "name"))
        names.add(event.name)
        in_horizon(scenario, event.date, (*path, "date"))
        if event.group is not None:
            _group(network, event.group, (*path, "group"))
        if event.groups is not None:
            for side, name in enumerate(event.groups):
                _group(network, name, (*path, "groups", side))
        if isinstance(event.probability, str):
            _parameter(scenario, event.probability, (*path, "probability"), None, "a probability parameter")
        if event.type == "decapitation":
            for field in ("decapitation_termination", "decapitation_capacity_loss"):
                if getattr(network.dynamics, field) is None:
                    raise ScenarioError(
                        f"a decapitation needs network.dynamics.{field}", (*path, "type"),
                        expected=f"'{field}: <a fraction parameter>' under network.dynamics",
                    )
        check_provenance(event, path, cited)


def exposed_names(network: NetworkSpec) -> dict[str, tuple[str, str]]:
    """Name given to rate expressions -> (what, theatre), e.g. affiliate_attraction_libya."""
    if network.affiliates is None:
        return {}
    return {f"{what}_{theatre}": (what, theatre) for theatre in network.affiliates.theatres for what in EXPOSED}


def attraction_dims(scenario: Scenario) -> tuple[str, ...]:
    """The dimensions attraction varies over: those of the theatres' weights, in the scenario's order."""
    affiliates = scenario.network.affiliates if scenario.network is not None else None
    if affiliates is None:
        return ()
    used = {d for t in affiliates.theatres.values() if t.weight for d in scenario.parameters[t.weight].dims}
    return tuple(d for d in scenario.dimensions if d in used)


def _check_affiliates(scenario: Scenario, network: NetworkSpec) -> None:
    affiliates = network.affiliates
    assert affiliates is not None
    where: FieldPath = ("network", "affiliates")
    _group(network, affiliates.hub, (*where, "hub"))
    flows = {flow.name: flow for flow in scenario.flows}
    owner: dict[str, str] = {}
    for theatre, spec in affiliates.theatres.items():
        path: FieldPath = (*where, "theatres", theatre)
        for index, name in enumerate(spec.groups):
            _group(network, name, (*path, "groups", index))
            if name == affiliates.hub:
                raise ScenarioError(f"the hub {name!r} cannot be its own affiliate", (*path, "groups", index))
            if name in owner:
                raise ScenarioError(
                    f"the group {name!r} is in two theatres ({owner[name]!r} and {theatre!r})", (*path, "groups", index)
                )
            owner[name] = theatre
        for index, name in enumerate(spec.arrivals):
            flow = flows.get(name)
            if flow is None:
                raise ScenarioError(f"unknown flow {name!r}", (*path, "arrivals", index), expected=one_of(flows))
            if flow.to not in scenario.compartments:
                raise ScenarioError(
                    f"the flow {name!r} goes to {flow.to!r}, not a compartment", (*path, "arrivals", index),
                    expected="a flow into the compartment of this theatre",
                )
        if spec.weight is not None:
            weight = scenario.parameters.get(spec.weight)
            if weight is None:
                raise ScenarioError(f"unknown parameter {spec.weight!r}", (*path, "weight"),
                                    expected=one_of(scenario.parameters))
            if not parse_unit(weight.unit).same_dimension(DIMENSIONLESS):
                raise ScenarioError(f"the parameter {spec.weight!r} is in {weight.unit}", (*path, "weight"),
                                    expected="a dimensionless weight")
            values = stratum_array(scenario, weight.value, list(weight.dims), weight.default, (*path, "weight"))
            if values.min() < 0:
                raise ScenarioError(f"the weight {spec.weight!r} is negative", (*path, "weight"),
                                    expected="weights >= 0")
    taken = {*scenario.parameters, *scenario.schedules, *scenario.compartments, *scenario.dimensions,
             *scenario.boundaries, *scenario.outcomes, *(f.name for f in scenario.flows)}
    for name in exposed_names(network):
        if name in taken:
            raise ScenarioError(
                f"the name {name!r} is given by the network to rate expressions", (*where, "theatres"),
                expected=f"no other scenario item named {name!r}",
            )


def network_symbols(scenario: Scenario) -> dict[str, Symbol]:
    """The names the network adds to rate expressions (only with an `affiliates` mapping)."""
    if scenario.network is None:
        return {}
    dims = attraction_dims(scenario)
    return {
        name: Symbol("coupling", DIMENSIONLESS, dims if what == "affiliate_attraction" else ())
        for name, (what, _) in exposed_names(scenario.network).items()
    }

"""Rules that relate the `network` section to the rest of the scenario; each failure names its field."""

from __future__ import annotations

from aftermath.errors import FieldPath, ScenarioError
from aftermath.network.schema import NetworkSpec
from aftermath.scenario.schema import Scenario, month_label
from aftermath.scenario.validate import _check_provenance, _citable, _in_horizon, _one_of, stratum_array
from aftermath.units import DIMENSIONLESS, PER_TIME, Unit, is_probability_unit, parse_unit

EXPOSED = ("affiliate_attraction", "affiliate_active", "affiliate_lethality")
"""Names the network gives rate expressions when it has `affiliates`."""
OUTPUT_DIMS = ("group", "tie", "ending")
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
    cited = _citable(scenario)
    for dim in OUTPUT_DIMS:
        if dim in scenario.dimensions:
            raise ScenarioError(
                f"the dimension name {dim!r} is used by the network's outputs", ("dimensions", dim),
                expected=f"another name (reserved with a network: {', '.join(OUTPUT_DIMS)})",
            )
    for name, group in network.groups.items():
        path = (*where, "groups", name)
        _check_provenance(group, path, cited)
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
        _in_horizon(scenario, network.dynamics_from, (*where, "dynamics_from"))
    _check_events(scenario, network, cited)
    if network.affiliates is not None:
        _check_affiliates(scenario, network)


def _group(network: NetworkSpec, name: str, path: FieldPath) -> None:
    if name not in network.groups:
        raise ScenarioError(f"unknown group {name!r}", path, expected=_one_of(network.groups))


def _check_territory_schedule(scenario: Scenario, name: str, path: FieldPath) -> None:
    schedule = scenario.schedules.get(name)
    if schedule is None:
        raise ScenarioError(
            f"unknown schedule {name!r}", path,
            expected="a share of peak territory between 0 and 1, or " + _one_of(scenario.schedules),
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
        _check_provenance(tie, path, cited)


def _parameter(
    scenario: Scenario, name: str, path: FieldPath, unit: Unit | None, what: str, dims: tuple[str, ...] = ()
) -> None:
    parameter = scenario.parameters.get(name)
    if parameter is None:
        raise ScenarioError(f"unknown parameter {name!r}", path, expected=f"{what}: {_one_of(scenario.parameters)}")
    if list(parameter.dims) not in ([], list(dims)):
        raise ScenarioError(
            f"the parameter {name!r} varies by {', '.join(parameter.dims)}", path,
            expected=f"{what}, over {' or '.join(['no dimension', *dims])}",
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
        _in_horizon(scenario, event.date, (*path, "date"))
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
        _check_provenance(event, path, cited)


def _check_affiliates(scenario: Scenario, network: NetworkSpec) -> None:
    affiliates = network.affiliates
    assert affiliates is not None
    where: FieldPath = ("network", "affiliates")
    dim = affiliates.dimension
    if dim not in scenario.dimensions:
        raise ScenarioError(f"unknown dimension {dim!r}", (*where, "dimension"), expected=_one_of(scenario.dimensions))
    _group(network, affiliates.hub, (*where, "hub"))
    labels = scenario.dimensions[dim]
    owner: dict[str, str] = {}
    for label in affiliates.groups:
        if label not in labels:
            raise ScenarioError(f"{label!r} is not a stratum of {dim!r}", (*where, "groups", label),
                                expected=_one_of(labels))
        for name in affiliates.members(label):
            _group(network, name, (*where, "groups", label))
            if name == affiliates.hub:
                raise ScenarioError(f"the hub {name!r} cannot be its own affiliate", (*where, "groups", label))
            if name in owner:
                raise ScenarioError(
                    f"the group {name!r} is in two theatres ({owner[name]!r} and {label!r})", (*where, "groups", label)
                )
            owner[name] = label
    missing = [label for label in labels if label not in affiliates.groups]
    if missing:
        raise ScenarioError(
            f"no group for the stratum {missing[0]!r} of {dim!r}", (*where, "groups"),
            expected="every stratum of the dimension mapped to its group(s), or [] for none",
        )
    flows = {flow.name: flow for flow in scenario.flows}
    for index, name in enumerate(affiliates.arrivals):
        path = (*where, "arrivals", index)
        flow = flows.get(name)
        if flow is None:
            raise ScenarioError(f"unknown flow {name!r}", path, expected=_one_of(flows))
        target = scenario.compartments.get(flow.to)
        if target is None or dim not in target.dims:
            raise ScenarioError(
                f"the flow {name!r} does not bring people into strata of {dim!r}", path,
                expected=f"a flow into a compartment stratified by {dim!r}",
            )
    if affiliates.weight is not None:
        _parameter(scenario, affiliates.weight, (*where, "weight"), DIMENSIONLESS, "a dimensionless weight", (dim,))
    taken = {*scenario.parameters, *scenario.schedules, *scenario.compartments, *scenario.dimensions,
             *scenario.boundaries, *scenario.outcomes, *(f.name for f in scenario.flows)}
    for name in EXPOSED:
        if name in taken:
            raise ScenarioError(
                f"the name {name!r} is given by the network to rate expressions", where,
                expected=f"no other scenario item named {name!r}",
            )

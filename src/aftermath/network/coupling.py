"""The alliance network as a coupling: it runs beside the compartments in both engines.

It gives rate expressions, over the affiliate-theatre dimension:
- `affiliate_attraction`: the share of free agents each theatre draws, W_i / sum_j W_j with
  W_i = b_i * sum over its groups of tie(g, hub) * C_g * safe_haven_g * (S_g / S_g0)^eta
  (0 for ended or untied groups; b_i an optional weight parameter; eta the strength elasticity);
- `affiliate_active`: the share of the theatre's groups still active;
- `affiliate_lethality`: the mean lethality index of its active groups.
After each step, the persons that the `arrivals` flows moved into a theatre join its groups (split
by their pull), so an affiliate's strength grows with arrivals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from aftermath.network.dynamics import (
    SAFE_HAVEN,
    NetworkState,
    advance_dated,
    capacities,
    compile_tables,
    dissolve,
    form,
    lethality,
    new_state,
    scalar,
    terminate,
)
from aftermath.network.validate import EXPOSED
from aftermath.scenario.expressions import Symbol
from aftermath.scenario.validate import flow_context
from aftermath.units import DIMENSIONLESS

if TYPE_CHECKING:
    from aftermath.model.compile import CompiledModel, Environment
    from aftermath.scenario.schema import Scenario


def network_symbols(scenario: Scenario) -> dict[str, Symbol]:
    """The names the network adds to rate expressions (only with an `affiliates` mapping)."""
    affiliates = scenario.network.affiliates if scenario.network is not None else None
    if affiliates is None:
        return {}
    return {name: Symbol("coupling", DIMENSIONLESS, (affiliates.dimension,)) for name in EXPOSED}


class NetworkCoupling:
    """Implements aftermath.model.coupling.Coupling for a scenario's `network` section."""

    name = "network"

    def __init__(self, scenario: Scenario, model: CompiledModel) -> None:
        network = scenario.network
        assert network is not None
        self.model = model
        self.tables = compile_tables(scenario, model.months, model.schedules)
        self.dynamics: dict[str, str | None] = network.dynamics.model_dump(exclude={"endings"})
        self.endings = list(network.dynamics.endings.values())
        self.symbols = network_symbols(scenario)
        groups = ("group", list(self.tables.groups))
        self.outputs: dict[str, tuple[tuple[str, list[str]], ...]] = {
            "network_alive": (groups,),
            "network_allies": (groups,),
            "network_centrality": (groups,),
            "network_capacity": (groups,),
            "network_lethality": (groups,),
            "network_strength": (groups,),
            "network_arrivals": (groups,),
            "network_provinces": (),
            "network_ties": (("tie", self.tables.pair_labels()),),
            "network_endings": (("ending", list(self.tables.endings)),),
        }
        self.affiliates = network.affiliates
        if self.affiliates is None:
            return
        dim = self.affiliates.dimension
        labels = model.dims[dim]
        self.hub = self.tables.groups.index(self.affiliates.hub)
        self.membership = np.zeros((len(labels), self.tables.size))
        for i, label in enumerate(labels):
            for name in self.affiliates.members(label):
                self.membership[i, self.tables.groups.index(name)] = 1.0
        self.exposed_shape = model.aligned_shape((dim,))
        axis = list(model.dims).index(dim)
        flow_index = {flow.name: i for i, flow in enumerate(scenario.flows)}
        self.arrival_flows = []
        for name in self.affiliates.arrivals:
            shape = model.aligned_shape(flow_context(scenario, flow_index[name]))
            self.arrival_flows.append((name, shape, tuple(1 + a for a in range(len(shape)) if a != axis)))
        self.outputs["affiliate_attraction"] = ((dim, labels),)

    def start(self, replicates: int, first_replicate: int, seed: int, stochastic: bool,
              parameters: Mapping[str, np.ndarray]) -> NetworkState:
        state = new_state(self.tables, replicates, first_replicate, seed, stochastic, parameters)
        advance_dated(self.tables, state, 0, self.model.parameters_at(0, parameters), self.dynamics)
        return state

    def values(self, state: NetworkState, step: int, parameters: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        dependence = scalar(parameters, self.dynamics["territorial_dependence"])
        caps = capacities(self.tables, state, step, dependence)
        index = caps.mean(axis=2)
        state.exposed["capacity"] = index
        state.exposed["lethality"] = lethality(state, scalar(parameters, self.dynamics["lethality_per_tie"]))
        if self.affiliates is None:
            return {}
        pull = state.ties[:, :, self.hub] * index * caps[:, :, SAFE_HAVEN]
        elasticity = self.dynamics["strength_elasticity"]
        if elasticity is not None:
            initial = self.tables.strength
            growth = np.divide(state.strength, initial, out=np.ones_like(state.strength), where=initial > 0)
            pull = pull * growth ** scalar(parameters, elasticity)
        theatre = pull @ self.membership.T
        if self.affiliates.weight is not None:
            weight = np.asarray(parameters[self.affiliates.weight], dtype=float)
            theatre = theatre * weight.reshape(weight.shape[0], -1)
        total = theatre.sum(axis=1, keepdims=True)
        attraction = np.divide(theatre, total, out=np.zeros_like(theatre), where=total > 0)
        present = state.alive @ self.membership.T
        members = self.membership.sum(axis=1)
        active = np.divide(present, members, out=np.zeros_like(present), where=members > 0)
        deadliness = state.exposed["lethality"] @ self.membership.T
        state.exposed.update(pull=pull, attraction=attraction)
        values = {
            "affiliate_attraction": attraction,
            "affiliate_active": active,
            "affiliate_lethality": np.divide(deadliness, present, out=np.zeros_like(present), where=present > 0),
        }
        return {name: value.reshape(value.shape[0], *self.exposed_shape) for name, value in values.items()}

    def update(self, state: NetworkState, step: int, environment: Environment,
               moved: Mapping[str, np.ndarray]) -> None:
        if self.affiliates is not None and self.arrival_flows:
            self._arrive(state, moved)
        parameters = environment.parameters
        dt = self.model.dt
        if step >= self.tables.dynamics_from:
            dynamics = self.dynamics
            ratio = scalar(parameters, dynamics["ally_hazard_ratio"])
            shares = (np.concatenate([scalar(parameters, name) for name in self.endings], axis=1)
                      if self.endings else np.ones((1, 1)))
            terminate(state, step, dt, scalar(parameters, dynamics["termination"]), ratio, shares)
            dissolve(state, step, dt, scalar(parameters, dynamics["dissolution"]))
            form(self.tables, state, step, dt, scalar(parameters, dynamics["formation"]), state.exposed["capacity"])
        upcoming = self.model.parameters_at(step + 1, state.base)
        advance_dated(self.tables, state, step + 1, upcoming, self.dynamics)

    def _arrive(self, state: NetworkState, moved: Mapping[str, np.ndarray]) -> None:
        """Persons moved into each theatre this step join its groups, split by their pull (else evenly)."""
        arriving = sum(
            moved[name].reshape(-1, *shape).sum(axis=axes) for name, shape, axes in self.arrival_flows
        )
        pull = state.exposed["pull"]
        theatre_pull = pull @ self.membership.T @ self.membership
        theatre_alive = state.alive @ self.membership.T @ self.membership
        share = np.where(
            theatre_pull > 0,
            np.divide(pull, theatre_pull, out=np.zeros_like(pull), where=theatre_pull > 0),
            np.divide(state.alive, theatre_alive, out=np.zeros_like(pull), where=theatre_alive > 0),
        )
        joining = (np.asarray(arriving) @ self.membership) * share
        state.strength += joining
        state.arrivals += joining

    def record(self, state: NetworkState) -> dict[str, np.ndarray]:
        tables = self.tables
        degree = state.ties.sum(axis=2)
        first, second = tables.pairs
        outputs = {
            "network_alive": state.alive.copy(),
            "network_allies": degree,
            "network_centrality": degree / max(tables.size - 1, 1),
            "network_capacity": state.exposed["capacity"],
            "network_lethality": state.exposed["lethality"],
            "network_strength": state.strength * state.alive,
            "network_arrivals": state.arrivals.copy(),
            "network_provinces": (state.ties * tables.province).sum(axis=(1, 2)) / 2,
            "network_ties": state.ties[:, first, second].astype(np.float32),
            "network_endings": state.endings.copy(),
        }
        if self.affiliates is not None:
            outputs["affiliate_attraction"] = state.exposed["attraction"]
        return outputs

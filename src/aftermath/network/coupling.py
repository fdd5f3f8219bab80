"""The alliance network as a coupling: it runs beside the compartments in both engines.

It gives rate expressions, for each affiliate theatre T of the `affiliates` mapping:
- `affiliate_attraction_T`: the share of the hub's free agents that T draws,
  P(any theatre tied) * b_T * W_T / sum over theatres U of b_U * W_U, where
  W_T = sum over T's groups g of tie(g, hub) * C_g * safe_haven_g * (S_g / S_g0)^eta
  (0 for ended or untied groups; C the capacity index, S the strength, eta its elasticity) and
  b_T the theatre's optional weight parameter (e.g. by origin), so attraction varies as b does;
- `affiliate_active_T`: the share of T's groups still active;
- `affiliate_lethality_T`: the mean lethality index of T's active groups.
After each step, the persons that T's `arrivals` flows moved join its groups (split by their
pull, else evenly), so an affiliate's strength grows with arrivals.
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
from aftermath.network.validate import attraction_dims, network_symbols

if TYPE_CHECKING:
    from aftermath.model.compile import CompiledModel
    from aftermath.model.coupling import Environment
    from aftermath.scenario.schema import Scenario


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
        theatres = list(self.affiliates.theatres.items())
        self.theatres = [name for name, _ in theatres]
        self.hub = self.tables.groups.index(self.affiliates.hub)
        self.membership = np.zeros((len(theatres), self.tables.size))
        for i, (_, theatre) in enumerate(theatres):
            for name in theatre.groups:
                self.membership[i, self.tables.groups.index(name)] = 1.0
        self.in_theatre = self.membership.any(axis=0)
        self.members = self.membership.sum(axis=1)
        self.weights = [theatre.weight for _, theatre in theatres]
        self.weight_shape = model.aligned_shape(attraction_dims(scenario))
        self.arrivals = [theatre.arrivals for _, theatre in theatres]
        self.outputs["network_attraction"] = (("theatre", self.theatres),)

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
        theatre = pull @ self.membership.T  # (R, theatres)
        total = theatre.sum(axis=1, keepdims=True)
        # the chance that any theatre is open to the hub's free agents: 0 or 1 in a stochastic run
        untied = np.where(self.in_theatre, 1.0 - state.ties[:, :, self.hub], 1.0)
        available = 1.0 - untied.prod(axis=1, keepdims=True)
        state.exposed.update(pull=pull, attraction=available * np.divide(theatre, total, out=np.zeros_like(theatre),
                                                                         where=total > 0))
        flat = [1] * len(self.weight_shape)
        column = theatre.reshape(*theatre.shape, *flat)  # (R, theatres, 1...)
        shape = (len(self.theatres), state.replicates, *self.weight_shape)
        columns = column.swapaxes(0, 1)  # (theatres, R, 1...)
        weighted = np.ascontiguousarray(np.broadcast_to(self._weights(state, parameters) * columns, shape))
        total = weighted.sum(axis=0)
        present = state.alive @ self.membership.T
        active = np.divide(present, self.members, out=np.zeros_like(present), where=self.members > 0)
        deadliness = np.divide(state.exposed["lethality"] @ self.membership.T, present, out=np.zeros_like(present),
                               where=present > 0)
        attraction = available.reshape(1, -1, *flat) * np.divide(
            weighted, total, out=np.zeros_like(weighted), where=total > 0
        )
        values = {}
        for i, name in enumerate(self.theatres):
            values[f"affiliate_attraction_{name}"] = attraction[i]
            values[f"affiliate_active_{name}"] = active[:, i].reshape(-1, *flat)
            values[f"affiliate_lethality_{name}"] = deadliness[:, i].reshape(-1, *flat)
        return values

    def _weights(self, state: NetworkState, parameters: Mapping[str, np.ndarray]) -> np.ndarray:
        """(theatres, R or 1, *weight dims) each theatre's weight parameter (1 where it has none), kept while
        the engine passes the same parameters (one dict per epoch)."""
        if state.weights is None or state.weights[0] is not parameters:
            values = [np.asarray(parameters[w], dtype=float) if w else np.ones(1) for w in self.weights]
            lead = max(v.shape[0] if v.ndim > len(self.weight_shape) else 1 for v in values)
            stacked = np.stack([np.broadcast_to(v, (lead, *self.weight_shape)) for v in values])
            state.weights = (parameters, stacked)
        return state.weights[1]

    def update(self, state: NetworkState, step: int, environment: Environment,
               moved: Mapping[str, np.ndarray]) -> None:
        if self.affiliates is not None:
            self._arrive(state, moved)
        parameters = environment.parameters
        dt = self.model.dt
        if step >= self.tables.dynamics_from:
            dynamics = self.dynamics
            ratio = scalar(parameters, dynamics["ally_hazard_ratio"])
            columns = [scalar(parameters, name) for name in self.endings] or [np.ones((1, 1))]
            shares = np.concatenate(np.broadcast_arrays(*columns), axis=1)  # some may vary by replicate
            terminate(state, step, dt, scalar(parameters, dynamics["termination"]), ratio, shares)
            dissolve(state, step, dt, scalar(parameters, dynamics["dissolution"]))
            form(self.tables, state, step, dt, scalar(parameters, dynamics["formation"]), state.exposed["capacity"])
        if step + 1 in self.tables.starts or step + 1 in self.tables.events:
            upcoming = self.model.parameters_at(step + 1, state.base)
            advance_dated(self.tables, state, step + 1, upcoming, self.dynamics)

    def _arrive(self, state: NetworkState, moved: Mapping[str, np.ndarray]) -> None:
        """Persons moved into each theatre this step join its groups, split by their pull (else evenly)."""
        arriving = np.stack(
            [sum((moved[name].sum(axis=1) for name in flows), np.zeros(state.replicates)) for flows in self.arrivals],
            axis=1,
        )
        pull = state.exposed["pull"]
        theatre_pull = pull @ self.membership.T @ self.membership
        theatre_alive = state.alive @ self.membership.T @ self.membership
        share = np.where(
            theatre_pull > 0,
            np.divide(pull, theatre_pull, out=np.zeros_like(pull), where=theatre_pull > 0),
            np.divide(state.alive, theatre_alive, out=np.zeros_like(pull), where=theatre_alive > 0),
        )
        joining = (arriving @ self.membership) * share
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
            outputs["network_attraction"] = state.exposed["attraction"]
        return outputs

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

from aftermath.engines.kernels import reduce_columns
from aftermath.model.coupling import cell_sums, joined_sums
from aftermath.network.dynamics import (
    MATERIAL_COLUMNS,
    SAFE_HAVEN,
    NetworkState,
    advance_dated,
    arrive,
    compile_tables,
    dissolve,
    expected_step,
    exposed_values,
    form,
    new_state,
    scalar,
    terminate,
)
from aftermath.network.validate import attraction_dims, network_symbols

if TYPE_CHECKING:
    from aftermath.model.compile import CompiledModel
    from aftermath.model.coupling import Environment, Moved
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
        self.loss = np.where(self.tables.has_territory, 1.0 - self.tables.territory, 0.0)
        """(steps + 1, G) the share of peak territory each group has lost (0 where territory is not modelled)."""
        # no affiliates: no theatres, no hub
        self.hub, self.theatres, self.weights, self.weight_shape = -1, [], [], (1,)
        self.membership, self.in_theatre, self.members = np.zeros((0, self.tables.size)), np.zeros(0, bool), np.zeros(0)
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
        self.same_theatre = self.membership.T @ self.membership
        """(G, G) 1 where two groups are in one theatre."""
        self.weight_shape = model.aligned_shape(attraction_dims(scenario))
        self.arrivals = [theatre.arrivals for _, theatre in theatres]
        self.flat = (1,) * len(self.weight_shape)
        self.names = [(f"affiliate_attraction_{name}", f"affiliate_active_{name}", f"affiliate_lethality_{name}")
                      for name in self.theatres]
        """The names of each theatre's exposed values."""
        self.outputs["network_attraction"] = (("theatre", self.theatres),)

    def start(self, replicates: int, first_replicate: int, seed: int, stochastic: bool,
              parameters: Mapping[str, np.ndarray]) -> NetworkState:
        state = new_state(self.tables, replicates, first_replicate, seed, stochastic, parameters)
        advance_dated(self.tables, state, 0, self.model.parameters_at(0, parameters), self.dynamics)
        return state

    def values(self, state: NetworkState, step: int, parameters: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        epoch = self._epoch(state, parameters)
        index, lethal, pull, share, attraction, active, deadliness = exposed_values(
            state.ties, state.alive, state.damage, state.strength, self.tables.capacities, self.tables.strength,
            self.loss[step], MATERIAL_COLUMNS, SAFE_HAVEN, epoch["territorial_dependence"],
            epoch["lethality_per_tie"], epoch["strength_elasticity"], self.dynamics["strength_elasticity"] is not None,
            self.hub, self.membership, self.in_theatre, self.members, epoch["weights"],
        )
        state.exposed.update(capacity=index, lethality=lethal, pull=pull, attraction=share)
        if self.affiliates is None:
            return {}
        attraction = attraction.reshape(len(self.theatres), state.replicates, *self.weight_shape)
        active = active.reshape(len(self.theatres), state.replicates, *self.flat)
        deadliness = deadliness.reshape(active.shape)
        values = {}
        for i, (attracting, open_share, lethal_mean) in enumerate(self.names):
            values[attracting] = attraction[i]
            values[open_share] = active[i]
            values[lethal_mean] = deadliness[i]
        return values

    def _epoch(self, state: NetworkState, parameters: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The dynamics' parameters as (R or 1, 1) columns (0 where unnamed), the endings' shares (R or 1,
        endings) and the affiliates' weights (theatres, R or 1, *weight dims; 1 where a theatre has none),
        kept while the engine passes the same parameters (one dict per epoch)."""
        if state.epoch is None or state.epoch[0] is not parameters:
            values = {key: scalar(parameters, name) for key, name in self.dynamics.items()}
            columns = [scalar(parameters, name) for name in self.endings] or [np.ones((1, 1))]
            values["shares"] = np.concatenate(np.broadcast_arrays(*columns), axis=1)  # some may vary by replicate
            weights = [np.asarray(parameters[w], dtype=float) if w else np.ones(1) for w in self.weights]
            lead = max((v.shape[0] if v.ndim > len(self.weight_shape) else 1 for v in weights), default=1)
            stacked = [np.broadcast_to(v, (lead, *self.weight_shape)).reshape(lead, -1) for v in weights]
            values["weights"] = np.stack(stacked) if stacked else np.zeros((0, 1, 1))  # (theatres, R or 1, W)
            state.epoch = (parameters, values)
        return state.epoch[1]

    def update(self, state: NetworkState, step: int, environment: Environment, moved: Moved) -> None:
        if self.affiliates is not None:
            self._arrive(state, moved)
        dt = self.model.dt
        if step >= self.tables.dynamics_from:
            epoch = self._epoch(state, environment.parameters)
            if state.stochastic:
                terminate(state, step, dt, epoch["termination"], epoch["ally_hazard_ratio"], epoch["shares"])
                dissolve(state, step, dt, epoch["dissolution"])
                form(self.tables, state, step, dt, epoch["formation"], state.exposed["capacity"])
            else:
                tables = self.tables
                expected_step(state.ties, state.alive, state.endings, step, dt, epoch["termination"],
                              epoch["ally_hazard_ratio"], epoch["shares"], epoch["dissolution"], epoch["formation"],
                              state.exposed["capacity"], tables.allowed, tables.opens, tables.rival)
        if step + 1 in self.tables.starts or step + 1 in self.tables.events:
            upcoming = self.model.parameters_at(step + 1, state.base)
            advance_dated(self.tables, state, step + 1, upcoming, self.dynamics)

    def _arrival_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Sums of the moved cells: persons each theatre's `arrivals` flows moved (the model's flows are
        compiled after its couplings, so this is built at the first run)."""
        def build() -> tuple[np.ndarray, np.ndarray]:
            flows = {flow.name: flow for flow in self.model.flows}
            rows = [cell_sums([(flows[name].rate_offset, (flows[name].cells,)) for name in names], ["cell"], None)
                    for names in self.arrivals]
            return joined_sums(rows)
        return self.model.derived("network_arrival_rows", build)

    def _arrive(self, state: NetworkState, moved: Moved) -> None:
        """Persons moved into each theatre this step join its groups, split by their pull (else evenly)."""
        arriving = np.empty((state.replicates, len(self.theatres)))
        reduce_columns(moved.cells, *self._arrival_rows(), arriving)
        arrive(arriving, state.exposed["pull"], state.alive, self.membership, self.same_theatre, state.strength,
               state.arrivals)

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

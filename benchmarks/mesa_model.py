"""The synthetic model written as an idiomatic Mesa 3 model: one agent per person.

This is how a Mesa user would write it: each person knows its compartment and stratum; every
month it leaves with probability 1 - exp(-H) for its total hazard H and picks an exit in
proportion to the exits' hazards; recruits arrive as new agents, removed people leave the model.
Rates come from `SyntheticModel.monthly_rates`, not from aftermath, so agreement with aftermath's
deterministic engine checks both implementations.
"""

from __future__ import annotations

import math
from collections import Counter

import mesa
import numpy as np

from synthetic import COHORTS, COMPARTMENTS, ORIGINS, SyntheticModel


class Person(mesa.Agent):
    """One person in one compartment and stratum."""

    def __init__(self, model: FlowModel, compartment: int, origin: int, cohort: int) -> None:
        super().__init__(model)
        self.compartment = compartment
        self.origin = origin
        self.cohort = cohort

    def step(self) -> None:
        exits = self.model.exits[self.compartment]
        rates = self.model.rates
        hazards = [rates[flow][self.origin][self.cohort] for flow, _ in exits]
        total = sum(hazards)
        if self.random.random() >= 1.0 - math.exp(-total):
            return
        pick = self.random.random() * total
        target = exits[-1][1]
        for (_, destination), hazard in zip(exits, hazards, strict=True):
            if pick < hazard:
                target = destination
                break
            pick -= hazard
        if target is None:
            self.remove()
        else:
            self.compartment = target


class FlowModel(mesa.Model):
    """The synthetic model's compartments as a population of agents."""

    def __init__(self, spec: SyntheticModel, seed: int) -> None:
        super().__init__(seed=seed)
        self.spec = spec
        names = {name: index for index, name in enumerate(COMPARTMENTS)}
        self.exits: list[list[tuple[int, int | None]]] = [[] for _ in COMPARTMENTS]
        self.inflows: list[tuple[int, int]] = []
        for index, flow in enumerate(spec.flows):
            if flow.source in names:
                self.exits[names[flow.source]].append((index, names.get(flow.target)))
            else:
                self.inflows.append((index, names[flow.target]))
        self.rates: list = []
        for (compartment, origin, cohort), count in np.ndenumerate(spec.initial):
            for _ in range(int(count)):
                Person(self, compartment, origin, cohort)

    def step(self) -> None:
        self.rates = self.spec.monthly_rates(self.steps - 1).tolist()
        self.agents.shuffle_do("step")
        for flow, compartment in self.inflows:
            for origin in range(len(ORIGINS)):
                for cohort in range(len(COHORTS)):
                    for _ in range(self.rng.poisson(self.rates[flow][origin][cohort])):
                        Person(self, compartment, origin, cohort)

    def totals(self) -> np.ndarray:
        """Persons in each compartment, over all strata."""
        counts = Counter(agent.compartment for agent in self.agents)
        return np.array([counts[index] for index in range(len(COMPARTMENTS))], dtype=float)

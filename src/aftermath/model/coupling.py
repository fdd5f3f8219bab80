"""The running half of the sub-model protocol (see `aftermath.scenario.submodels`): a coupling.

A sub-model's `couple(scenario, model)` returns a Coupling, which runs beside the compartments on the
same clock. It exposes named values to rate expressions (like parameters, aligned to the model's
dimensions), reads what the flows moved each step, and records its own outputs. Both engines drive
it the same way; the `stochastic` flag and the keyed random numbers of `aftermath.engines.kernels`
let it be random in the stochastic engine and expected in the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from aftermath.scenario.expressions import Symbol


@dataclass
class Environment:
    """What names in rate expressions read at one step."""

    compartments: dict[str, np.ndarray]
    parameters: dict[str, np.ndarray]
    schedules: dict[str, float]
    t: float
    coupled: dict[str, np.ndarray] = field(default_factory=dict)
    """Values exposed by couplings (e.g. the alliance network) at this step."""


class Coupling(Protocol):
    name: str
    symbols: dict[str, Symbol]
    """Names it gives rate expressions: unit and the model dimensions each varies over."""
    outputs: dict[str, tuple[tuple[str, list[str]], ...]]
    """Recorded output name -> its own dimensions as (name, labels), after replicate and time."""

    def start(
        self, replicates: int, first_replicate: int, seed: int, stochastic: bool, parameters: Mapping[str, np.ndarray]
    ) -> Any:
        """A fresh state for a block of replicates (parameters: the block's base-unit arrays)."""

    def values(self, state: Any, step: int, parameters: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The exposed values at `step` (given the parameters in force then, interventions applied):
        arrays aligned to the model's dims, leading axis R or 1."""

    def update(self, state: Any, step: int, environment: Environment, moved: Mapping[str, np.ndarray]) -> None:
        """Advance by one step, after the flows; `moved[flow]` is (R, context cells) persons moved and
        `environment.compartments` the counts at the start of the step (before the flows)."""

    def record(self, state: Any) -> dict[str, np.ndarray]:
        """Outputs at the current time, each (R, *its dims)."""

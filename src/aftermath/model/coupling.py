"""Sub-models that run beside the compartments on the same monthly clock (e.g. the alliance network).

A coupling exposes named values to rate expressions (like parameters, aligned to the model's
dimensions), reads what the flows moved each step, and records its own outputs. Both engines
drive it the same way; the `stochastic` flag and the keyed random numbers of
`aftermath.engines.kernels` let it be random in the stochastic engine and expected in the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from aftermath.scenario.expressions import Symbol

if TYPE_CHECKING:
    from aftermath.model.compile import CompiledModel, Environment
    from aftermath.scenario.schema import Scenario


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
        """Advance by one step, after the flows; `moved[flow]` is (R, context cells) persons moved."""

    def record(self, state: Any) -> dict[str, np.ndarray]:
        """Outputs at the current time, each (R, *its dims)."""


def coupling_symbols(scenario: Scenario) -> dict[str, Symbol]:
    """Names the scenario's couplings add to rate expressions (none without a `network` section)."""
    if getattr(scenario, "network", None) is None:
        return {}
    from aftermath.network.coupling import network_symbols

    return network_symbols(scenario)


def build_couplings(scenario: Scenario, model: CompiledModel) -> list[Coupling]:
    if getattr(scenario, "network", None) is None:
        return []
    from aftermath.network.coupling import NetworkCoupling

    return [NetworkCoupling(scenario, model)]

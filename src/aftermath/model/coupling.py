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

    compartments: Mapping[str, np.ndarray]
    """Compartment name -> (R, *aligned) counts."""
    parameters: dict[str, np.ndarray]
    schedules: dict[str, float]
    t: float
    coupled: dict[str, np.ndarray] = field(default_factory=dict)
    """Values exposed by couplings (e.g. the alliance network) at this step."""
    counts: np.ndarray | None = None
    """(R, cells) the flat state that `compartments` view (the step engines give it; see `cell_sums`)."""


class Moved(dict):
    """flow name -> (R, context cells) persons moved in a step, views of one (R, rate cells) array,
    which `cells` holds (for `cell_sums` over several flows at once)."""

    def __init__(self, cells: np.ndarray, windows: Mapping[str, tuple[int, int]]) -> None:
        super().__init__({name: cells[:, start:stop] for name, (start, stop) in windows.items()})
        self.cells = cells


def cell_sums(blocks: list[tuple[int, tuple[int, ...]]], dims: list[str], by: str | None,
              labels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a 0/1 sum over flat cells, for `aftermath.engines.kernels.reduce_columns`.

    blocks: (offset, aligned shape) of each compartment (in the state) or flow (in the moved cells) summed;
    dims: the model's dimension names (the aligned axes). With `by` None one row sums every cell of every
    block; otherwise row l sums the cells at label l of dimension `by` (`labels` of them), and a block
    without that dimension (extent 1) counts in every row, as a broadcast sum would.
    Returns (indptr (rows + 1,), indices) int64 arrays."""
    rows: list[list[np.ndarray]] = [[] for _ in range(labels if by is not None else 1)]
    for offset, shape in blocks:
        cells = offset + np.arange(int(np.prod(shape)))
        if by is None:
            rows[0].append(cells)
            continue
        axis = dims.index(by)
        label = np.indices(shape).reshape(len(shape), -1)[axis]
        for row in range(labels):
            rows[row].append(cells if shape[axis] == 1 else cells[label == row])
    indices = [np.concatenate(row) if row else np.zeros(0, np.int64) for row in rows]
    indptr = np.concatenate([[0], np.cumsum([len(i) for i in indices])])
    return indptr.astype(np.int64), np.concatenate(indices).astype(np.int64)


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
        """Advance by one step, after the flows; `moved[flow]` is (R, context cells) persons moved (a
        `Moved`, when the step engines call) and `environment.compartments` the counts at the start of the
        step (before the flows)."""

    def record(self, state: Any) -> dict[str, np.ndarray]:
        """Outputs at the current time, each (R, *its dims)."""


def joined_sums(rows: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Several `cell_sums` row sets as one, in order."""
    indptr, indices, start = [np.zeros(1, np.int64)], [], 0
    for pointers, cells in rows:
        indptr.append(pointers[1:] + start)
        indices.append(cells)
        start += len(cells)
    return np.concatenate(indptr), np.concatenate(indices)

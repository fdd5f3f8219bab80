"""The ODE engine: the continuous-time limit of the compiled model, integrated with scipy's solve_ivp.

The state of a block of R parameter sets is one system: for each run, its compartment cells and the
persons each flow cell has moved since the start of the reporting step (a quadrature that gives flow
outcomes, boundary counts and what couplings read). An outflow of per-capita hazard h from a cell with
n persons moves h n persons per month; an inflow from a source moves its rate. Each reporting step is
integrated on its own, from the state after that step's events, with the parameters, schedules and
coupled values in force during the step held fixed, so dated changes act exactly at their dates and an
adaptive method never steps over a discontinuity.

The Jacobian of the stacked system is block diagonal (runs do not interact), so LSODA gets it as a
banded matrix and BDF or Radau as a sparsity pattern: a stiff batch costs what one run costs per run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse

from aftermath.errors import ModelError

METHODS = ("LSODA", "RK45", "DOP853", "Radau", "BDF")
JACOBIAN_BUDGET_BYTES = 256_000_000
"""Memory the implicit methods' Jacobian (and LSODA's work array) may take for one block of runs."""


@dataclass(frozen=True)
class OdeOptions:
    """How solve_ivp integrates: `method` one of METHODS (LSODA switches between Adams and BDF when
    the problem turns stiff); `rtol` relative and `atol` absolute tolerance, in persons."""

    method: str = "LSODA"
    rtol: float = 1e-7
    atol: float = 1e-6

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown ODE method {self.method!r}; expected one of {', '.join(METHODS)}")
        if not (0 < self.rtol < 1 and self.atol > 0):
            raise ValueError(
                f"ODE tolerances must be 0 < rtol < 1 and atol > 0, got rtol={self.rtol}, atol={self.atol}"
            )


@dataclass(frozen=True)
class FlowSystem:
    """The flows as a linear map from flow-cell fluxes to compartment-cell derivatives."""

    per_capita: np.ndarray
    """(rate cells,) True where the rate is a hazard on the source cell, False for a source inflow."""
    source_cell: np.ndarray
    """(rate cells,) the state cell a hazard applies to (0, unused, for inflows)."""
    balance: sparse.csr_matrix
    """(rate cells, cells): -1 where a flow cell leaves a state cell, +1 where it enters one."""


def batch_size(options: OdeOptions, cells: int, rate_cells: int, fallback: int) -> int:
    """Runs per solve_ivp call: the implicit methods hold a Jacobian of (cells + rate cells)^2 numbers per
    run (LSODA as a band three times that wide), so their batches shrink as the model grows; at least 1."""
    size = cells + rate_cells
    if options.method in ("RK45", "DOP853"):
        return fallback
    per_run = 8 * size * (3 * size + 22)
    return int(max(1, min(fallback, JACOBIAN_BUDGET_BYTES // per_run)))


def flow_system(source_cells: np.ndarray, target_cells: np.ndarray, cells: int) -> FlowSystem:
    """`source_cells`, `target_cells`: per flow cell, the state cell left and entered (-1 for a
    boundary); see `aftermath.engines.simulate.flow_cells`."""
    width = len(source_cells)
    leaves, enters = source_cells >= 0, target_cells >= 0
    rows = np.concatenate([np.flatnonzero(leaves), np.flatnonzero(enters)])
    columns = np.concatenate([source_cells[leaves], target_cells[enters]])
    values = np.concatenate([-np.ones(leaves.sum()), np.ones(enters.sum())])
    balance = sparse.csr_matrix((values, (rows, columns)), shape=(width, cells))
    return FlowSystem(leaves, np.where(leaves, source_cells, 0), balance)


def integrate_step(
    system: FlowSystem,
    rates_at: Callable[[float, np.ndarray], np.ndarray],
    state: np.ndarray,
    duration: float,
    options: OdeOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate one reporting step of `duration` months.

    `state`: (R, cells) persons at the start. `rates_at(t, state)`: the (R, rate cells) hazards (per
    month) and inflows (persons per month) at t months into the step. Returns the state at the end,
    (R, cells), and the persons each flow cell moved during the step, (R, rate cells); both >= 0 (the
    solver's round-off below zero, of the order of atol, is clipped). Raises ModelError if the solver fails.
    """
    replicates, cells = state.shape
    width = system.balance.shape[0]
    size = cells + width

    def derivative(t: float, y: np.ndarray) -> np.ndarray:
        block = y.reshape(replicates, size)
        current = np.maximum(block[:, :cells], 0.0)
        rates = rates_at(t, current)
        flux = rates * np.where(system.per_capita, current[:, system.source_cell], 1.0)
        out = np.empty_like(block)
        out[:, :cells] = system.balance.T.dot(flux.T).T
        out[:, cells:] = flux
        return out.reshape(-1)

    from scipy.integrate import solve_ivp  # imported here: 0.5 s that the step engines' runs need not pay

    start = np.concatenate([state, np.zeros((replicates, width))], axis=1).reshape(-1)
    extra: dict[str, object] = {}
    if options.method == "LSODA":
        extra = {"lband": size - 1, "uband": size - 1}
    elif options.method in ("Radau", "BDF"):
        extra = {"jac_sparsity": sparse.block_diag([np.ones((size, size))] * replicates, format="csr")}
    solution = solve_ivp(
        derivative,
        (0.0, duration),
        start,
        method=options.method,
        t_eval=[duration],
        rtol=options.rtol,
        atol=options.atol,
        **extra,  # type: ignore[arg-type]
    )
    if not solution.success or solution.y.shape[1] != 1:
        raise ModelError(f"the ODE solver ({options.method}) failed: {solution.message}")
    end = solution.y[:, 0].reshape(replicates, size)
    return np.maximum(end[:, :cells], 0.0), np.maximum(end[:, cells:], 0.0)

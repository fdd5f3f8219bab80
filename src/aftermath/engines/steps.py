"""Is the step fine enough for the rates? The coarse-step check behind `check` and `run`'s warning.

The step engines move people once per (sub-)step with rates frozen at its start, and people who enter
a compartment during a step cannot leave it before the next one. Both errors are first order in
H dt, the total exit hazard of a compartment cell times the (sub-)step length: measured on the SIR and
inflow cases of docs/engines.md, the relative error of an outcome is a small multiple of the largest
H dt (an epidemic's final size, sensitive to R0, about 0.5 x). So the check runs the deterministic
engine once at the parameters' values, finds the largest H dt over cells and reporting steps, and
warns above WARN_HAZARD_STEP, recommending enough sub-steps to bring H dt to TARGET_HAZARD_STEP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aftermath.engines.simulate import flow_cells, simulate
from aftermath.model.compile import CompiledModel
from aftermath.scenario.schema import MAX_SUBSTEPS

WARN_HAZARD_STEP = 0.05
"""Warn when a cell's total exit hazard times the sub-step length exceeds this (5% leave per step)."""
TARGET_HAZARD_STEP = 0.004
"""Recommended sub-steps bring H dt down to this, which keeps every conformance case within 1%
(measured: the largest relative error there is about 2 x H dt, on the SIR peak)."""


@dataclass(frozen=True)
class CoarseStep:
    """The worst compartment cell: its total exit hazard per (sub-)step and where and when it peaks."""

    compartment: str
    stratum: str
    date: str
    flow: str
    """The outflow with the largest hazard in that cell then."""
    hazard_step: float
    """H dt with the model's current sub-steps."""
    substeps: int
    """The model's current sub-steps per reporting step."""
    recommended: int
    """Sub-steps per reporting step that bring H dt to TARGET_HAZARD_STEP."""

    @property
    def coarse(self) -> bool:
        return self.hazard_step > WARN_HAZARD_STEP

    def message(self) -> str:
        where = f"{self.compartment}[{self.stratum}]" if self.stratum else self.compartment
        return (
            f"the step is coarse for the rates: in {self.date} the total exit hazard of {where} times the "
            f"{'sub-step' if self.substeps > 1 else 'step'} is {self.hazard_step:.3g} (above {WARN_HAZARD_STEP:g}; "
            f"largest outflow {self.flow!r}), so the step engines may be off by several percent; "
            f"use --substeps {self.recommended} (or time.substeps: {self.recommended}) or --engine ode"
        )


def coarse_step(model: CompiledModel) -> CoarseStep | None:
    """Run the deterministic engine once at the parameters' values and return the compartment cell
    with the largest total exit hazard x sub-step length (None when the model has no outflow).
    Raises ModelError as `simulate` does."""
    leaves, _ = flow_cells(model)
    internal = leaves >= 0
    if not internal.any():
        return None
    worst = {"value": -1.0, "step": 0, "cell": 0, "column": 0}
    columns = np.flatnonzero(internal)

    def probe(step: int, rates: np.ndarray) -> None:
        hazards = rates[:, columns]
        total = np.zeros((rates.shape[0], model.cells))
        np.add.at(total, (slice(None), leaves[columns]), hazards)
        cell = int(np.argmax(total.max(axis=0)))
        value = float(total[:, cell].max())
        if value > worst["value"]:
            in_cell = np.flatnonzero(leaves[columns] == cell)
            worst.update(
                value=value,
                step=step,
                cell=cell,
                column=int(columns[in_cell[np.argmax(hazards[:, in_cell].max(axis=0))]]),
            )

    simulate(model, replicates=1, engine="deterministic", keep_compartments=False, probe=probe)
    hazard_month = worst["value"]
    layout = next(c for c in model.compartments if c.offset <= worst["cell"] < c.offset + c.size)
    flow = next(f for f in model.flows if f.rate_offset <= worst["column"] < f.rate_offset + f.cells)
    index = np.unravel_index(worst["cell"] - layout.offset, layout.aligned)
    stratum = ", ".join(
        f"{dim}={labels[i]}" for (dim, labels), i in zip(model.dims.items(), index, strict=True) if dim in layout.dims
    )
    per_report = hazard_month * model.dt
    return CoarseStep(
        compartment=layout.name,
        stratum=stratum,
        date=model.month_label(worst["step"]),
        flow=flow.name,
        hazard_step=per_report / model.substeps,
        substeps=model.substeps,
        recommended=int(min(MAX_SUBSTEPS, max(1, math.ceil(per_report / TARGET_HAZARD_STEP)))),
    )

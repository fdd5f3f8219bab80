"""Stopping a run at the first impossible value, with a message that says where and why.

Each step the engines check that every count is a finite number from 0 to `COUNT_CEILING` per cell
and every rate a finite number >= 0 (a rate in a cell with nobody in it moves no one, so it is not
checked). A violation stops the run with a ModelError naming the flow or compartment, the stratum,
the date, the replicate and its parameter sample, and the values of the parameters and schedules
involved with where each came from (the file, `--set`, a distribution draw, a policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from aftermath.engines.kernels import MAX_DRAW, first_invalid
from aftermath.errors import ModelError
from aftermath.model.compile import CompiledModel
from aftermath.scenario.expressions import names_in
from aftermath.scenario.validate import MAX_PERSONS, parsed

COUNT_CEILING = MAX_PERSONS
"""The most persons one cell (a compartment's stratum, or a flow's stratum in one step) may hold:
more than live on Earth means a runaway rate or a slip in the scenario, never a result."""


@dataclass(frozen=True)
class BlockContext:
    """What names a replicate of the block being run: its number, its parameter sample, its values."""

    model: CompiledModel
    base: Mapping[str, np.ndarray]
    """Parameter arrays of the block (leading axis 1 or the block's replicates), base units."""
    drawn: frozenset[str]
    """Parameters given per run (drawn from their distributions)."""
    first_replicate: int
    samples: np.ndarray | None
    """Parameter sample of each replicate of the block; None: each replicate is its own sample."""

    def replicate_text(self, row: int) -> str:
        replicate = self.first_replicate + row
        sample = replicate if self.samples is None else int(self.samples[row])
        return f"replicate {replicate} (parameter sample {sample})"


def check_rates(context: BlockContext, state: np.ndarray, rates: np.ndarray, step: int, origin: np.ndarray) -> None:
    """Zero the rates of empty cells (they move no one, even NaN from 0/0); stop at any other bad rate.

    `origin` holds, per rate cell, the state cell its flow leaves (-1 for an inflow from a source).
    """
    if first_invalid(rates) < 0:
        return
    leaving = origin >= 0
    empty = np.zeros(rates.shape, dtype=bool)
    empty[:, leaving] = state[:, origin[leaving]] == 0
    rates[empty] = 0.0
    invalid = first_invalid(rates)
    if invalid < 0:
        return
    row, column = divmod(int(invalid), rates.shape[1])
    flow, where = _flow_cell(context.model, column)
    raise ModelError(
        f"flow {flow.name!r}: its rate is {rates[row, column]:g} {_place(context, flow.context, where, row, step)}"
        f"{_involved(context, _flow_names(context.model, flow.name), row, where, step)}; "
        "expected a finite rate >= 0 (check the expression and these values)"
    )


def check_counts(context: BlockContext, state: np.ndarray, step: int, moved: np.ndarray | None = None) -> None:
    """Stop the run if a flow moved, or a compartment holds, a count outside [0, COUNT_CEILING] or NaN.

    `moved` is what each flow moved in the step from `step` to `step + 1` (then `state` is the state
    at `step + 1`); without it `state` is the state at `step` (initial counts, or after events).
    """
    model = context.model
    if moved is not None:
        invalid = first_invalid(moved, COUNT_CEILING)
        if invalid >= 0:
            row, column = divmod(int(invalid), moved.shape[1])
            flow, where = _flow_cell(model, column)
            raise ModelError(
                f"flow {flow.name!r} moved {_count(moved[row, column])} "
                f"{_place(context, flow.context, where, row, step)}"
                f"{_involved(context, _flow_names(model, flow.name), row, where, step)}; "
                f"expected a finite count from 0 to {COUNT_CEILING:g} per cell and step"
            )
        step += 1
    invalid = first_invalid(state, COUNT_CEILING)
    if invalid < 0:
        return
    row, column = divmod(int(invalid), state.shape[1])
    layout = next(c for c in model.compartments if c.offset <= column < c.offset + c.size)
    where = tuple(int(i) for i in np.unravel_index(column - layout.offset, layout.aligned))
    raise ModelError(
        f"compartment {layout.name!r} holds {_count(state[row, column])} "
        f"{_place(context, layout.dims, where, row, step)}"
        f"{_involved(context, _compartment_names(model, layout.name), row, where, step)}; "
        f"expected a finite count from 0 to {COUNT_CEILING:g} per cell"
    )


def _count(value: float) -> str:
    if np.isnan(value):
        return f"NaN persons (a count or mean above {MAX_DRAW:g}, or not a number, cannot be drawn)"
    return f"{value:g} persons"


def _flow_cell(model: CompiledModel, column: int):
    flow = next(f for f in model.flows if f.rate_offset <= column < f.rate_offset + f.cells)
    shape = model.aligned_shape(flow.context)
    return flow, tuple(int(i) for i in np.unravel_index(column - flow.rate_offset, shape))


def _place(context: BlockContext, dims: tuple[str, ...], where: tuple[int, ...], row: int, step: int) -> str:
    model = context.model
    strata = [f"{d}={labels[where[k]]}" for k, (d, labels) in enumerate(model.dims.items()) if d in dims]
    stratum = f"in stratum {', '.join(strata)}" if strata else "(no strata)"
    return f"{stratum}, {model.month_label(step)}, {context.replicate_text(row)}"


def _flow_names(model: CompiledModel, name: str) -> list[str]:
    flow = next(f for f in model.scenario.flows if f.name == name)
    return names_in(parsed(flow.rate, ("flows",)))


def _compartment_names(model: CompiledModel, name: str) -> list[str]:
    """Parameters and schedules behind a compartment's count: its initial value and its flows' rates."""
    scenario = model.scenario
    initial = scenario.compartments[name].initial
    names = [initial] if isinstance(initial, str) else []
    for flow in scenario.flows:
        if name in (flow.from_, flow.to):
            names += _flow_names(model, flow.name)
    return list(dict.fromkeys(names))


def _involved(context: BlockContext, names: list[str], row: int, where: tuple[int, ...], step: int) -> str:
    """'; values (persons, months): a=0.1 (drawn from its distribution), b=3 (--set)' for `names`."""
    model = context.model
    parameters = model.parameters_at(step, context.base)
    parts = []
    for name in names:
        if name in parameters:
            array = np.asarray(parameters[name])
            cell = [w if n > 1 else 0 for w, n in zip(where, array.shape[1:], strict=True)]
            index = (min(row, array.shape[0] - 1), *cell)
            value = float(array[index])
            origin = (
                "--set" if name in model.overrides
                else "drawn from its distribution" if name in context.drawn
                else "the file's value"
            )
        elif name in model.schedules:
            value, origin = float(model.schedules[name][step]), "schedule"
        else:
            continue
        policies = [e.policy for e in model.effects if e.target == name and e.first <= step <= e.last]
        if policies:
            origin += ", changed by policy " + "+".join(dict.fromkeys(policies))
        parts.append(f"{name}={value:g} ({origin})")
    return f"; values (persons, months): {', '.join(parts)}" if parts else ""

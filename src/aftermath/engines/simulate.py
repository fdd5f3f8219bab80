"""Run a compiled model: the deterministic and the stochastic engine share everything but the draws.

Replicates are run in blocks sized to a memory budget; since every random draw is keyed by its
global replicate index, the block size never changes a result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr

from aftermath.engines.kernels import advance, binomial_array
from aftermath.errors import ModelError
from aftermath.model.compile import CompiledModel, Environment, stable_id

Engine = Literal["stochastic", "deterministic"]
ENGINES: tuple[str, ...] = ("stochastic", "deterministic")
RECORD_BUDGET_BYTES = 96_000_000
SEED_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class KernelTables:
    """The model's flow structure as the flat arrays the numba kernel takes."""

    flow_source: np.ndarray
    flow_offset: np.ndarray
    flow_cells: np.ndarray
    flow_stream: np.ndarray
    to_cells: np.ndarray
    group_start: np.ndarray
    group_stream: np.ndarray
    source_flows: np.ndarray
    sink_cells: np.ndarray
    source_cells: np.ndarray


def kernel_tables(model: CompiledModel) -> KernelTables:
    """Group the outflows of each compartment together (the kernel's competing exits)."""
    internal = sorted(
        (i for i, f in enumerate(model.flows) if f.source is not None),
        key=lambda i: model.flows[i].source,  # type: ignore[arg-type,return-value]
    )
    sources = [i for i, f in enumerate(model.flows) if f.source is None]
    order = internal + sources
    flows = [model.flows[i] for i in order]
    group_start, group_stream = [], []
    for position, flow in enumerate(flows[: len(internal)]):
        if position == 0 or flow.source != flows[position - 1].source:
            group_start.append(position)
            group_stream.append(stable_id(f"exits:{model.compartments[flow.source].name}"))  # type: ignore[index]
    group_start.append(len(internal))
    to_cells = np.concatenate([f.to_cells for f in model.flows]) if model.flows else np.zeros(0, np.int64)
    rate_sinks = to_cells < 0
    source_mask = np.zeros(model.rate_cells, dtype=bool)
    for flow in model.flows:
        if flow.source is None:
            source_mask[flow.rate_offset : flow.rate_offset + flow.cells] = True
    return KernelTables(
        flow_source=np.array(
            [model.compartments[f.source].offset if f.source is not None else -1 for f in flows], np.int64
        ),
        flow_offset=np.array([f.rate_offset for f in flows], np.int64),
        flow_cells=np.array([f.cells for f in flows], np.int64),
        flow_stream=np.array([f.stream for f in flows], np.uint64),
        to_cells=to_cells.astype(np.int64),
        group_start=np.array(group_start, np.int64),
        group_stream=np.array(group_stream, np.uint64),
        source_flows=np.array(list(range(len(internal), len(order))), np.int64),
        sink_cells=rate_sinks & ~source_mask,
        source_cells=source_mask,
    )


def parameter_batch(model: CompiledModel, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-run parameter values (in their declared units) as aligned base-unit arrays.

    A scalar parameter takes shape (R,); a stratified one (R, *its strata in the order of its dims).
    """
    from aftermath.model.compile import _align_from
    from aftermath.units import to_base

    batch = {}
    for name, raw in values.items():
        parameter = model.scenario.parameters.get(name)
        if parameter is None:
            raise ValueError(f"unknown parameter {name!r}")
        array = np.asarray(raw, dtype=float)
        own = [len(model.dims[d]) for d in parameter.dims]
        if array.ndim == 0 or list(array.shape[1:]) != own:
            raise ValueError(
                f"parameter {name!r}: expected shape (runs, {', '.join(map(str, own))}), got {array.shape}"
            )
        aligned = np.stack([_align_from(row, list(parameter.dims), model) for row in array])
        batch[name] = to_base(aligned, parameter.unit)
    return batch


def simulate(
    model: CompiledModel,
    replicates: int = 100,
    seed: int = 0,
    engine: Engine = "stochastic",
    parameters: Mapping[str, np.ndarray] | None = None,
    keep_compartments: bool = True,
    first_replicate: int = 0,
    block_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> xr.Dataset:
    """Run `replicates` runs of the model and return compartments and outcomes as a Dataset.

    `parameters` gives per-run values (see `parameter_batch`); with it, replicate r uses row r.
    Replicates are numbered from `first_replicate`, which keys their random numbers, so runs
    split into pieces reproduce one whole run exactly.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    if replicates < 1:
        raise ValueError("replicates must be at least 1")
    batch = parameter_batch(model, parameters or {})
    for name, array in batch.items():
        if array.shape[0] != replicates:
            raise ValueError(f"parameter {name!r} has {array.shape[0]} rows for {replicates} replicates")
    tables = kernel_tables(model)
    block = block_size or _block_size(model)
    pieces = []
    for start in range(0, replicates, block):
        stop = min(start + block, replicates)
        rows = {name: array[start:stop] for name, array in batch.items()}
        pieces.append(
            _run_block(model, tables, stop - start, seed, engine, rows, first_replicate + start, keep_compartments)
        )
        if progress is not None:
            progress(stop - start)
    return _assemble(model, pieces, seed, engine, first_replicate, keep_compartments)


def _block_size(model: CompiledModel) -> int:
    per_replicate = 8 * (model.cells + model.rate_cells) * (model.steps + 1)
    return int(np.clip(RECORD_BUDGET_BYTES // max(per_replicate, 1), 16, 1024))


def _needed_flows(model: CompiledModel) -> list[int]:
    wanted = {term for o in model.outcomes for term, kind in o.terms.items() if kind == "flow"}
    return [i for i, f in enumerate(model.flows) if f.name in wanted]


def _run_block(
    model: CompiledModel,
    tables: KernelTables,
    replicates: int,
    seed: int,
    engine: Engine,
    rows: Mapping[str, np.ndarray],
    first_replicate: int,
    keep_compartments: bool,
) -> dict[str, np.ndarray]:
    stochastic = engine == "stochastic"
    key_seed = np.uint64(seed & SEED_MASK)
    base = {**model.parameters, **rows}
    state = np.broadcast_to(model.initial_state(base), (replicates, model.cells)).copy()
    next_state = np.empty_like(state)
    rates = np.empty((replicates, model.rate_cells))
    moved = np.zeros((replicates, model.rate_cells))
    steps = model.steps
    record = np.empty((steps + 1, replicates, model.cells))
    flows_needed = _needed_flows(model)
    moved_record = {i: np.zeros((steps + 1, replicates, model.flows[i].cells)) for i in flows_needed}
    entered = np.zeros((steps + 1, replicates))
    exited = np.zeros((steps + 1, replicates))
    events_by_step: dict[int, list] = {}
    for event in model.events:
        events_by_step.setdefault(event.step, []).append(event)
    coupled = [c.start(replicates, first_replicate, seed, stochastic, base) for c in model.couplings]
    coupled_record: dict[str, list[np.ndarray]] = {}
    with np.errstate(all="ignore"):
        for step in range(steps + 1):
            environment = _environment(model, state, step, base, coupled)
            for event in events_by_step.get(step, []):
                exited[step] += _apply_event(
                    model, event, state, environment, key_seed, first_replicate, step, stochastic
                )
            record[step] = state
            for coupling, coupling_state in zip(model.couplings, coupled, strict=True):
                for name, value in coupling.record(coupling_state).items():
                    coupled_record.setdefault(name, []).append(value)
            if step == steps:
                break
            _fill_rates(model, environment, rates, step)
            advance(
                state,
                rates,
                next_state,
                moved,
                tables.flow_source,
                tables.flow_offset,
                tables.flow_cells,
                tables.flow_stream,
                tables.to_cells,
                tables.group_start,
                tables.group_stream,
                tables.source_flows,
                model.dt,
                key_seed,
                np.int64(first_replicate),
                np.int64(step),
                stochastic,
            )
            state, next_state = next_state, state
            if model.couplings:
                moved_by_flow = {f.name: moved[:, f.rate_offset : f.rate_offset + f.cells] for f in model.flows}
                for coupling, coupling_state in zip(model.couplings, coupled, strict=True):
                    coupling.update(coupling_state, step, environment, moved_by_flow)
            entered[step + 1] = entered[step] + moved[:, tables.source_cells].sum(axis=1)
            exited[step + 1] += exited[step] + moved[:, tables.sink_cells].sum(axis=1)
            for i in flows_needed:
                flow = model.flows[i]
                moved_record[i][step + 1] = moved[:, flow.rate_offset : flow.rate_offset + flow.cells]
    result = {"__entered__": entered.T, "__exited__": exited.T}
    for name, series in coupled_record.items():
        result[name] = np.moveaxis(np.stack(series), 0, 1)
    for outcome in model.outcomes:
        result[outcome.name] = _outcome(model, outcome, record, moved_record)
    if keep_compartments:
        for layout in model.compartments:
            block = record[:, :, layout.offset : layout.offset + layout.size]
            shape = [len(model.dims[d]) for d in layout.dims]
            result[layout.name] = np.moveaxis(block, 0, 1).reshape(replicates, steps + 1, *shape)
    return result


def _environment(
    model: CompiledModel, state: np.ndarray, step: int, base: Mapping[str, np.ndarray], coupled: list
) -> Environment:
    replicates = state.shape[0]
    parameters = model.parameters_at(step, base)
    values: dict[str, np.ndarray] = {}
    for coupling, coupling_state in zip(model.couplings, coupled, strict=True):
        values.update(coupling.values(coupling_state, step, parameters))
    return Environment(
        compartments={
            c.name: state[:, c.offset : c.offset + c.size].reshape(replicates, *c.aligned) for c in model.compartments
        },
        parameters=parameters,
        schedules={name: float(series[step]) for name, series in model.schedules.items()},
        t=float(step * model.dt),
        coupled=values,
    )


def _fill_rates(model: CompiledModel, environment: Environment, rates: np.ndarray, step: int) -> None:
    replicates = rates.shape[0]
    for flow in model.flows:
        value = flow.rate(environment)
        shape = (replicates, *model.aligned_shape(flow.context))
        rates[:, flow.rate_offset : flow.rate_offset + flow.cells] = np.broadcast_to(value, shape).reshape(
            replicates, flow.cells
        )
    valid = np.isfinite(rates) & (rates >= 0)
    if not valid.all():
        column = int(np.argwhere(~valid)[0][1])
        flow = next(f for f in model.flows if f.rate_offset <= column < f.rate_offset + f.cells)
        bad = rates[~valid][0]
        raise ModelError(
            f"flow {flow.name!r}: its rate is {bad:g} in {model.month_label(step)}; "
            "expected a finite rate >= 0 (check the expression and its parameters)"
        )


def _apply_event(
    model: CompiledModel,
    event,
    state: np.ndarray,
    environment: Environment,
    seed: np.uint64,
    first_replicate: int,
    step: int,
    stochastic: bool,
) -> np.ndarray:
    """Move a share of a compartment at the event's date; returns persons sent to a sink."""
    layout = model.compartments[event.source]
    replicates = state.shape[0]
    fraction = np.broadcast_to(event.fraction(environment), (replicates, *layout.aligned)).reshape(replicates, -1)
    if not (np.isfinite(fraction).all() and (fraction >= 0).all() and (fraction <= 1).all()):
        raise ModelError(
            f"event {event.name!r}: its fraction is outside [0, 1] in {model.month_label(step)}; "
            "expected a share between 0 and 1"
        )
    counts = state[:, layout.offset : layout.offset + layout.size]
    if stochastic:
        moving = binomial_array(
            counts,
            np.ascontiguousarray(fraction),
            seed,
            np.int64(first_replicate),
            np.uint64(event.stream),
            np.int64(step),
        )
    else:
        moving = counts * fraction
    state[:, layout.offset : layout.offset + layout.size] -= moving
    if event.to_cells[0] < 0:
        return moving.sum(axis=1)
    rows = np.arange(replicates)[:, None]
    np.add.at(state, (rows, event.to_cells[None, :]), moving)
    return np.zeros(replicates)


def _outcome(model: CompiledModel, outcome, record: np.ndarray, moved: Mapping[int, np.ndarray]) -> np.ndarray:
    """An outcome over (replicate, time, *by): its terms selected, summed, then combined."""
    global_dims = list(model.dims)
    names = [f.name for f in model.flows]
    keep = [1 + 1 + global_dims.index(d) for d in outcome.by]
    terms = {}
    for term, kind in outcome.terms.items():
        if kind == "compartment":
            layout = model.layout(term)
            data = record[:, :, layout.offset : layout.offset + layout.size].reshape(*record.shape[:2], *layout.aligned)
        else:
            index = names.index(term)
            flow = model.flows[index]
            data = moved[index].reshape(*record.shape[:2], *model.aligned_shape(flow.context))
        for dim, labels in outcome.select.items():
            data = np.take(data, labels, axis=2 + global_dims.index(dim))
        axes = tuple(a for a in range(2, data.ndim) if a not in keep)
        terms[term] = data.sum(axis=axes)
    value = np.broadcast_to(outcome.evaluate(terms), (*record.shape[:2], *[len(model.dims[d]) for d in outcome.by]))
    if outcome.cumulative:
        value = np.cumsum(value, axis=0)
    return np.moveaxis(np.asarray(value, dtype=float), 0, 1)


def _assemble(
    model: CompiledModel,
    pieces: list[dict[str, np.ndarray]],
    seed: int,
    engine: Engine,
    first_replicate: int,
    keep_compartments: bool,
) -> xr.Dataset:
    def joined(name: str) -> np.ndarray:
        data = np.concatenate([piece[name] for piece in pieces])
        if engine == "stochastic" and name in model.scenario.compartments:
            return data.astype(np.int64)
        return data

    replicates = sum(len(piece["__entered__"]) for piece in pieces)
    coords: dict[str, object] = {
        "replicate": np.arange(first_replicate, first_replicate + replicates),
        "time": np.array([model.month_label(i) for i in range(model.steps + 1)], dtype="datetime64[M]"),
    }
    coords.update({dim: labels for dim, labels in model.dims.items()})
    variables = {}
    if keep_compartments:
        for layout in model.compartments:
            variables[layout.name] = xr.Variable(
                ("replicate", "time", *layout.dims), joined(layout.name), {"kind": "compartment", "units": "persons"}
            )
    for outcome in model.outcomes:
        variables[outcome.name] = xr.Variable(
            ("replicate", "time", *outcome.by), joined(outcome.name), {"kind": "outcome"}
        )
    for coupling in model.couplings:
        for name, dims in coupling.outputs.items():
            coords.update({dim: labels for dim, labels in dims})
            variables[name] = xr.Variable(
                ("replicate", "time", *[dim for dim, _ in dims]), joined(name), {"kind": coupling.name}
            )
    variables["entered"] = xr.Variable(
        ("replicate", "time"),
        joined("__entered__"),
        {"kind": "boundary", "description": "cumulative inflow from sources"},
    )
    variables["exited"] = xr.Variable(
        ("replicate", "time"), joined("__exited__"), {"kind": "boundary", "description": "cumulative outflow to sinks"}
    )
    dataset = xr.Dataset(variables, coords=coords)
    dataset.attrs.update(
        scenario=model.scenario.name,
        scenario_hash=model.scenario_hash,
        engine=engine,
        seed=seed,
        policies=",".join(f"{k}={v:g}" for k, v in model.interventions.items()),
    )
    return dataset

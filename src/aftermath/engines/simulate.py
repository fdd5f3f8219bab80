"""Run a compiled model: the deterministic and the stochastic engine share everything but the draws.

Replicates are run in blocks sized to a memory budget; since every random draw is keyed by its
global replicate index, the block size never changes a result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numba
import numpy as np
import scipy.sparse as sparse
import xarray as xr

from aftermath.engines.diagnose import COUNT_CEILING, BlockContext, check_counts, check_rates
from aftermath.engines.kernels import advance, advance_span, binomial_array, expected_span, reduce_columns
from aftermath.engines.ode import FlowSystem, OdeOptions, batch_size, flow_system, integrate_step
from aftermath.errors import ModelError
from aftermath.model.compile import CompiledModel, stable_id
from aftermath.model.coupling import Environment, Moved
from aftermath.resources import check_seed, require_memory
from aftermath.scenario.expressions import names_in
from aftermath.scenario.validate import TIME_SYMBOL, parsed

Engine = Literal["stochastic", "deterministic", "ode"]
ENGINES: tuple[str, ...] = ("stochastic", "deterministic", "ode")
RECORD_BUDGET_BYTES = 256_000_000
REPLICATES_PER_THREAD = 16
"""By default the kernel uses another thread for each this many replicates (up to numba's thread count). At
16, `aftermath run` (blocks of 47 replicates of the default scenario) uses both cores of a 2-core machine:
5.6 -> 4.9 s wall with the deterministic engine, 6.4 -> 5.5 s stochastic, for about 25% more CPU seconds
(measured on a quiet machine, two runs each, against 32)."""


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
    group_flows: np.ndarray
    """The model's index (`model.flows`) of each flow in kernel order: groups first, then inflows."""
    rate_origin: np.ndarray
    """Per rate cell, the state cell its flow leaves (-1 for an inflow from a source)."""
    exit_matrix: sparse.csr_matrix | None
    """(rate cells, cells) 0/1: which state cell each outflow's hazard applies to; None unless an inflow
    from a source reads compartments (only then do the step engines need each cell's total hazard)."""

    @property
    def structure(self) -> tuple[np.ndarray, ...]:
        """The arrays the step kernels take as their `tables` (see kernels.advance)."""
        return (self.flow_source, self.flow_offset, self.flow_cells, self.flow_stream, self.to_cells,
                self.group_start, self.group_stream, self.source_flows)


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
    rate_origin, _ = flow_cells(model)
    source_mask = rate_origin < 0
    exit_matrix = None
    if any(_reads_compartments(model, index) for index, flow in enumerate(model.flows) if flow.source is None):
        rows = np.flatnonzero(rate_origin >= 0)
        exit_matrix = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, rate_origin[rows])), shape=(model.rate_cells, model.cells)
        )
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
        group_flows=np.array(order, np.int64),
        rate_origin=rate_origin,
        exit_matrix=exit_matrix,
    )


def _reads_compartments(model: CompiledModel, index: int) -> bool:
    tree = parsed(model.scenario.flows[index].rate, ("flows", index, "rate"))
    return any(name in model.scenario.compartments for name in names_in(tree))


def rate_epochs(model: CompiledModel) -> list[list[tuple] | None]:
    """Per flow, a key per reporting step that changes whenever its rate may change (None: every sub-step).

    A rate that names only parameters and schedules is the same at two steps where its schedules have
    the same values and the same policy effects act on its parameters, so the step engines evaluate it
    again only when its key changes. A rate that names a compartment, the time `t` or a sub-model's
    value (e.g. the alliance network's) is evaluated at every sub-step.
    """
    scenario = model.scenario
    epochs: list[list[tuple] | None] = []
    for index in range(len(model.flows)):
        names = names_in(parsed(scenario.flows[index].rate, ("flows", index, "rate")))
        if any(n == TIME_SYMBOL or (n not in scenario.parameters and n not in scenario.schedules) for n in names):
            epochs.append(None)
            continue
        schedules = [model.schedules[n] for n in names if n in scenario.schedules]
        effects = [k for k, e in enumerate(model.effects) if e.kind == "parameter" and e.target in names]
        epochs.append([
            (
                tuple(float(series[step]) for series in schedules),
                tuple(k for k in effects if model.effects[k].first <= step <= model.effects[k].last),
            )
            for step in range(model.steps + 1)
        ])
    return epochs


def rate_changes(model: CompiledModel) -> tuple[np.ndarray, np.ndarray]:
    """Which flows' rates the step engines evaluate: (steps + 1, flows) at the first sub-step of each
    reporting step (all at step 0, then those whose `rate_epochs` key changed or that have none) and
    (flows,) at the later sub-steps (those with no key). Built once per model (`CompiledModel.derived`)."""
    epochs = rate_epochs(model)
    every = np.array([e is None for e in epochs], dtype=bool)
    changed = np.ones((model.steps + 1, len(epochs)), dtype=bool)
    for index, keys in enumerate(epochs):
        if keys is not None:
            changed[1:, index] = [keys[step] != keys[step - 1] for step in range(1, model.steps + 1)]
    return changed, every


@dataclass(frozen=True)
class TermMatrix:
    """A 0/1 matrix in compressed rows: row k sums the state (or moved) cells indices[indptr[k]:indptr[k+1]]."""

    indptr: np.ndarray
    indices: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1


@dataclass(frozen=True)
class OutcomeTables:
    """Each outcome term (a compartment or flow, its selection, summed down to the outcome's `by`
    strata) as rows of a sparse 0/1 matrix, so one pass per step reduces the whole state."""

    from_state: TermMatrix
    from_moved: TermMatrix
    columns: dict[tuple[str, str], tuple[str, int, tuple[int, ...]]]
    """(outcome, term) -> ('state' or 'moved', first row, by-shape)."""


def outcome_tables(model: CompiledModel) -> OutcomeTables:
    global_dims = list(model.dims)
    entries: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"state": ([], []), "moved": ([], [])}
    widths = {"state": 0, "moved": 0}
    columns = {}
    flows = {f.name: f for f in model.flows}
    for outcome in model.outcomes:
        by_shape = tuple(len(model.dims[d]) for d in outcome.by)
        for term, kind in outcome.terms.items():
            if kind == "compartment":
                source, layout = "state", model.layout(term)
                offset, shape = layout.offset, layout.aligned
            else:
                source, flow = "moved", flows[term]
                offset, shape = flow.rate_offset, model.aligned_shape(flow.context)
            index = np.indices(shape).reshape(len(shape), int(np.prod(shape)))
            selected = np.ones(index.shape[1], dtype=bool)
            for dim, labels in outcome.select.items():
                selected &= np.isin(index[global_dims.index(dim)], labels)
            by_index = [index[global_dims.index(d)] for d in outcome.by]
            row = np.ravel_multi_index(by_index, by_shape) if by_shape else np.zeros(index.shape[1], dtype=int)
            rows, cells = entries[source]
            rows.append(widths[source] + row[selected])
            cells.append(offset + np.flatnonzero(selected))
            columns[(outcome.name, term)] = (source, widths[source], by_shape)
            widths[source] += int(np.prod(by_shape))

    def matrix(source: str) -> TermMatrix:
        rows, cells = entries[source]
        row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        cell = np.concatenate(cells) if cells else np.zeros(0, np.int64)
        order = np.argsort(row, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=widths[source]))])
        return TermMatrix(indptr.astype(np.int64), cell[order].astype(np.int64))

    return OutcomeTables(matrix("state"), matrix("moved"), columns)


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
        aligned = _align_from(array, list(parameter.dims), model, leading=1).copy()
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
    threads: int | None = None,
    samples: np.ndarray | None = None,
    ode: OdeOptions | None = None,
    probe: Callable[[int, np.ndarray], None] | None = None,
) -> xr.Dataset:
    """Run `replicates` runs of the model and return compartments and outcomes as a Dataset.

    Engines: "stochastic" (the Euler-multinomial chain), "deterministic" (its expectation), both taking
    `model.substeps` sub-steps per reporting step; "ode" (the continuous-time limit, solve_ivp with
    the `ode` options, all runs of a block integrated as one system). Results are on the reporting grid.
    Parameters are HELD AT THEIR VALUES unless `parameters` is given, so the bands show chance alone: this
    is `aftermath run --fixed-parameters`. `aftermath run` (and fit-check) draw every uncertain parameter
    once per replicate; to get its numbers, pass `parameters=aftermath.draw_parameters(scenario,
    replicates, seed)`. `parameters` gives per-run values (see `parameter_batch`); replicate r uses row r.
    Replicates are numbered from `first_replicate`, which keys their random numbers, so runs
    split into pieces reproduce one whole run exactly. `threads` > 1 runs a block's replicates
    on several cores (same numbers whatever the count); None (the default) takes one thread per
    REPLICATES_PER_THREAD replicates, up to numba's current thread count (all cores, unless the caller,
    e.g. a process-pool worker, lowered it with numba.set_num_threads).
    `samples` gives the parameter sample of each replicate, to name it in errors (default: its index).

    Raises ModelError, naming the flow or compartment, stratum, date, replicate, parameter sample and
    the values involved, when a rate is not a finite number >= 0 in a cell with people in it, or a
    count leaves [0, diagnose.COUNT_CEILING] or cannot be drawn (see engines/diagnose.py).

    Raises ValueError for a bad request and aftermath.errors.ResourceError for a seed outside
    0..2^63-1 or a result larger than this machine's memory (checked before any work).
    `probe(step, rates)`, if given, sees the (R, rate cells) rates of each reporting step's first
    sub-step (hazards per month, inflows in persons per month; see `aftermath.engines.steps`).
    Raises ValueError for a bad argument, ModelError when a rate or event turns invalid during a run.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    if replicates < 1:
        raise ValueError("replicates must be at least 1")
    check_seed(seed)
    check_result_memory(model, replicates, keep_compartments)
    batch = parameter_batch(model, parameters or {})
    for name, array in batch.items():
        if array.shape[0] != replicates:
            raise ValueError(f"parameter {name!r} has {array.shape[0]} rows for {replicates} replicates")
    tables = model.derived("kernel_tables", lambda: kernel_tables(model))
    outcomes = model.derived("outcome_tables", lambda: outcome_tables(model))
    block = block_size or _block_size(model, outcomes, keep_compartments)
    if engine == "ode" and block_size is None:
        block = batch_size(ode or OdeOptions(), model.cells, model.rate_cells, block)
    pieces = []
    previous_threads = numba.get_num_threads()
    if threads is None:
        threads = min(previous_threads, replicates // REPLICATES_PER_THREAD)
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        for start in range(0, replicates, block):
            stop = min(start + block, replicates)
            rows = {name: array[start:stop] for name, array in batch.items()}
            context = BlockContext(
                model, {**model.parameters, **rows}, frozenset(rows), first_replicate + start,
                None if samples is None else np.asarray(samples)[start:stop],
            )
            pieces.append(
                _run_block(
                    context, tables, outcomes, stop - start, seed, engine, keep_compartments, ode or OdeOptions(), probe
                )
            )
            if progress is not None:
                progress(stop - start)
    finally:
        numba.set_num_threads(previous_threads)
    return _assemble(model, pieces, seed, engine, first_replicate, keep_compartments)


def check_result_memory(model: CompiledModel, replicates: int, keep_compartments: bool) -> None:
    """Refuse (ResourceError) a `simulate` whose result would not fit in physical memory: 8 bytes per
    recorded number, (replicates, steps + 1) per outcome stratum and, when kept, per compartment cell."""
    outcomes = sum(int(np.prod([len(model.dims[d]) for d in o.by])) for o in model.outcomes)
    recorded = outcomes + (model.cells if keep_compartments else 0)
    require_memory(8.0 * replicates * (model.steps + 1) * recorded, f"{replicates:,} replicates")


def _block_size(model: CompiledModel, outcomes: OutcomeTables, keep_compartments: bool) -> int:
    """As many replicates per block as the recorded series fit in the memory budget."""
    recorded = outcomes.from_state.rows + outcomes.from_moved.rows + (model.cells if keep_compartments else 0)
    per_replicate = 8 * (recorded * (model.steps + 1) + 4 * model.cells + 4 * model.rate_cells)
    return int(np.clip(RECORD_BUDGET_BYTES // max(per_replicate, 1), 16, 1024))


def _run_block(
    context: BlockContext,
    tables: KernelTables,
    outcomes: OutcomeTables,
    replicates: int,
    seed: int,
    engine: Engine,
    keep_compartments: bool,
    ode: OdeOptions,
    probe: Callable[[int, np.ndarray], None] | None,
) -> dict[str, np.ndarray]:
    model, base, first_replicate = context.model, context.base, context.first_replicate
    stochastic = engine == "stochastic"
    system = flow_system(*flow_cells(model), model.cells) if engine == "ode" else None
    key_seed = np.uint64(seed)
    with np.errstate(invalid="ignore"):  # NaN initial counts are reported by check_counts
        state = np.broadcast_to(model.initial_state(base), (replicates, model.cells)).copy()
    check_counts(context, state, 0)
    next_state = np.empty_like(state)
    rates = np.empty((replicates, model.rate_cells))
    rate_views = [_window(rates, f.rate_offset, f.cells, model.aligned_shape(f.context)) for f in model.flows]
    moved = np.zeros((replicates, model.rate_cells))
    changed, every = model.derived("rate_changes", lambda: rate_changes(model))
    if probe is not None:  # the probe sees every rate of every step
        changed, every = np.ones_like(changed), np.ones_like(every)
    kernel = KernelState(
        np.empty((replicates, 2, model.cells)), np.empty((replicates, 2, model.rate_cells)), np.zeros((replicates, 2)),
        np.zeros(replicates, np.int8), changed, every,
    )
    steps = model.steps
    record = np.empty((steps + 1, replicates, model.cells)) if keep_compartments else None
    state_terms = np.empty((steps + 1, replicates, outcomes.from_state.rows))
    moved_terms = np.zeros((steps + 1, replicates, outcomes.from_moved.rows))
    entered = np.zeros((steps + 1, replicates))
    exited = np.zeros((steps + 1, replicates))
    events_by_step: dict[int, list] = {}
    for event in model.events:
        events_by_step.setdefault(event.step, []).append(event)
    coupled = [c.start(replicates, first_replicate, seed, stochastic, base) for c in model.couplings]
    coupled_record: dict[str, np.ndarray] = {}  # (R, steps + 1, *the output's dims), filled step by step
    epochs = model.derived("parameter_epochs", lambda: [model.parameter_epoch(s) for s in range(model.steps + 1)])
    # the parameters in force in each epoch: the steps of an epoch share one dict (couplings key on it)
    parameters_by_epoch: dict[tuple[int, ...], dict[str, np.ndarray]] = {}
    windows = {f.name: (f.rate_offset, f.rate_offset + f.cells) for f in model.flows}
    moved_by_flow = Moved(moved, windows)  # views of `moved` (the step engines reuse it; the ODE engine does not)
    spans = _spans(model, changed, every, events_by_step) if system is None and probe is None else None
    span_from = 0  # spans start at this step or later (after a span that flagged an error, see _span)
    step = -1
    with np.errstate(all="ignore"):
        while step < steps:
            step += 1
            epoch = epochs[step]
            if epoch not in parameters_by_epoch:
                parameters_by_epoch[epoch] = model.parameters_at(step, base)
            environment = _environment(model, state, step, parameters_by_epoch[epoch], coupled)
            for event in events_by_step.get(step, []):
                exited[step] += _apply_event(
                    model, event, state, environment, key_seed, first_replicate, step, stochastic
                )
                check_counts(context, state, step)
            if record is not None:
                record[step] = state
            reduce_columns(state, outcomes.from_state.indptr, outcomes.from_state.indices, state_terms[step])
            for coupling, coupling_state in zip(model.couplings, coupled, strict=True):
                for name, value in coupling.record(coupling_state).items():
                    if name not in coupled_record:
                        coupled_record[name] = np.empty((replicates, steps + 1, *value.shape[1:]), value.dtype)
                    coupled_record[name][:, step] = value
            if step == steps:
                break
            if spans is not None and spans[step] > 1 and step >= span_from:
                length = spans[step]
                if _span(context, tables, outcomes, kernel, environment, state, next_state, rates, rate_views, moved,
                         record, state_terms, moved_terms, entered, exited, step, length, key_seed, stochastic):
                    step += length - 1
                    continue
                span_from = step + length
            if system is not None:
                state, moved = _ode_step(
                    context, tables.rate_origin, system, environment, state, rates, rate_views, step, ode
                )
                check_counts(context, state, step, moved)
            else:
                state, next_state = _substeps(
                    context,
                    tables,
                    kernel,
                    environment,
                    state,
                    next_state,
                    rates,
                    rate_views,
                    moved,
                    step,
                    key_seed,
                    stochastic,
                    probe,
                )
            if model.couplings:
                if moved is not moved_by_flow.cells:
                    moved_by_flow = Moved(moved, windows)
                for coupling, coupling_state in zip(model.couplings, coupled, strict=True):
                    coupling.update(coupling_state, step, environment, moved_by_flow)
            if system is not None:
                entered[step + 1] = entered[step] + moved[:, tables.source_cells].sum(axis=1)
                exited[step + 1] += exited[step] + moved[:, tables.sink_cells].sum(axis=1)
            else:
                entered[step + 1] = entered[step] + kernel.boundary[:, 0]
                exited[step + 1] += exited[step] + kernel.boundary[:, 1]
            reduce_columns(moved, outcomes.from_moved.indptr, outcomes.from_moved.indices, moved_terms[step + 1])
        result = {"__entered__": entered.T, "__exited__": exited.T}
        result.update(coupled_record)
        for outcome in model.outcomes:
            result[outcome.name] = _outcome(outcome, outcomes, state_terms, moved_terms, model.dt)
    if record is not None:
        for layout in model.compartments:
            block = record[:, :, layout.offset : layout.offset + layout.size]
            shape = [len(model.dims[d]) for d in layout.dims]
            result[layout.name] = np.moveaxis(block, 0, 1).reshape(replicates, steps + 1, *shape)
    return result


@dataclass
class KernelState:
    """What the step kernel keeps between calls within a block (see `kernels.advance`)."""

    exit_cache: np.ndarray
    """(R, 2, cells) per compartment cell 1 - exp(-H dt) and its binomial constant, valid while the rates
    are unchanged."""
    split_cache: np.ndarray
    """(R, 2, rate cells) per outflow cell its share of the exits and the share's binomial constant."""
    boundary: np.ndarray
    """(R, 2) persons entered from sources and left to sinks in the last kernel step."""
    errors: np.ndarray
    """(R,) the kernel's error bits of the last kernel step."""
    changed: np.ndarray
    """(steps + 1, flows) which rates to evaluate at the first sub-step of each step (`rate_changes`)."""
    every: np.ndarray
    """(flows,) which rates to evaluate at the later sub-steps."""

    def due(self, step: int, substep: int) -> np.ndarray:
        """(flows,) which flows' rates must be evaluated at sub-step `substep` of reporting step `step`
        (steps are run in order from 0)."""
        return self.changed[step] if substep == 0 else self.every


def _substeps(
    context: BlockContext,
    tables: KernelTables,
    kernel: KernelState,
    environment: Environment,
    state: np.ndarray,
    next_state: np.ndarray,
    rates: np.ndarray,
    rate_views: list[np.ndarray],
    moved: np.ndarray,
    step: int,
    key_seed: np.uint64,
    stochastic: bool,
    probe: Callable[[int, np.ndarray], None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """One reporting step as `model.substeps` kernel steps of dt / substeps; rates are evaluated at
    the start of each sub-step and `moved` sums the persons moved over all of them. Sub-step k of
    step s draws with the key index s * substeps + k (with one sub-step, the step itself).

    Only the rates that may have changed are evaluated again (`KernelState.due`); the kernel checks
    rates and counts as it goes, and on a flagged replicate the checks of engines/diagnose.py name
    the cell and raise ModelError."""
    model = context.model
    substeps = model.substeps
    total = moved if substeps == 1 else np.zeros_like(moved)
    for k in range(substeps):
        if k:
            environment = _moved_on(model, environment, state, step, k / substeps)
        due = kernel.due(step, k)
        _fill_rates(context, environment, state, rates, rate_views, due, (tables.exit_matrix, model.dt / substeps))
        if probe is not None and k == 0:
            check_rates(context, state, rates, step, tables.rate_origin)
            probe(step, rates)
        advance(
            state,
            rates,
            next_state,
            moved,
            kernel.exit_cache,
            kernel.split_cache,
            kernel.boundary,
            kernel.errors,
            tables.structure,
            model.dt / substeps,
            key_seed,
            np.int64(context.first_replicate),
            np.int64(step * substeps + k),
            stochastic,
            _fresh_groups(tables, due),
            COUNT_CEILING,
        )
        if kernel.errors.any():
            check_rates(context, state, rates, step, tables.rate_origin)
            check_counts(context, next_state, step, moved)
            raise AssertionError("the step kernel flagged a value that the checks of engines/diagnose.py accept")
        state, next_state = next_state, state
        if substeps > 1:
            total += moved
    if substeps > 1:
        moved[...] = total
    return state, next_state


def _spans(model: CompiledModel, changed: np.ndarray, every: np.ndarray, events: dict[int, list]) -> np.ndarray | None:
    """(steps,) per step, how many steps from it `kernels.advance_span` may run in one call: the later
    ones evaluate no rate and have no event. None (each step on its own) for a model with sub-steps,
    sub-models or a rate evaluated at every sub-step."""
    if model.substeps != 1 or model.couplings or every.any():
        return None
    spans = np.ones(model.steps, dtype=np.int64)
    for step in range(model.steps - 2, -1, -1):
        if not changed[step + 1].any() and step + 1 not in events:
            spans[step] = spans[step + 1] + 1
    return spans


def _span(
    context: BlockContext,
    tables: KernelTables,
    outcomes: OutcomeTables,
    kernel: KernelState,
    environment: Environment,
    state: np.ndarray,
    next_state: np.ndarray,
    rates: np.ndarray,
    rate_views: list[np.ndarray],
    moved: np.ndarray,
    record: np.ndarray | None,
    state_terms: np.ndarray,
    moved_terms: np.ndarray,
    entered: np.ndarray,
    exited: np.ndarray,
    step: int,
    length: int,
    key_seed: np.uint64,
    stochastic: bool,
) -> bool:
    """Run reporting steps step..step + length - 1 in one kernel call (see `_spans`); `state` then holds
    the state after them. False if the kernel flagged a value: `state` and the series are then as they
    were, for the caller to run the steps one by one and name the cell."""
    model = context.model
    due = kernel.due(step, 0)
    _fill_rates(context, environment, state, rates, rate_views, due, (tables.exit_matrix, model.dt))
    start = state.copy()
    arrays = (state, rates, next_state, moved, kernel.exit_cache, kernel.split_cache, kernel.boundary, kernel.errors,
              tables.structure, model.dt)
    span = (np.int64(step), np.int64(length))
    series = (np.empty((0, 0, 0)) if record is None else record, state_terms,
              (outcomes.from_state.indptr, outcomes.from_state.indices), moved_terms,
              (outcomes.from_moved.indptr, outcomes.from_moved.indices), entered, exited)
    if stochastic:
        advance_span(*arrays, key_seed, np.int64(context.first_replicate), *span, _fresh_groups(tables, due),
                     COUNT_CEILING, True, *series)
    else:
        expected_span(*arrays, *span, _fresh_groups(tables, due), COUNT_CEILING, *series)
    if not kernel.errors.any():
        return True
    state[...] = start
    exited[step + 1 : step + length + 1] = 0.0
    return False


def _fresh_groups(tables: KernelTables, due: np.ndarray) -> np.ndarray:
    """(groups,) which groups of outflows have a flow whose rate is evaluated again (see kernels.advance)."""
    groups = len(tables.group_stream)
    return np.logical_or.reduceat(due[tables.group_flows], tables.group_start[:-1]) if groups else due[:0]


def _ode_step(
    context: BlockContext,
    origin: np.ndarray,
    system: FlowSystem,
    environment: Environment,
    state: np.ndarray,
    rates: np.ndarray,
    rate_views: list[np.ndarray],
    step: int,
    options: OdeOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """One reporting step of the ODE engine; returns the state after it and the persons moved."""

    model = context.model

    def rates_at(t: float, current: np.ndarray) -> np.ndarray:
        moved_on = _moved_on(model, environment, current, step, t / model.dt)
        _fill_rates(context, moved_on, current, rates, rate_views)
        check_rates(context, current, rates, step, origin)
        return rates

    return integrate_step(system, rates_at, state, model.dt, options)


def flow_cells(model: CompiledModel) -> tuple[np.ndarray, np.ndarray]:
    """Per flow cell (the columns of the rates array): the state cell it leaves and the one it
    enters, -1 for a source or a sink."""
    leaves = np.full(model.rate_cells, -1, dtype=np.int64)
    for flow in model.flows:
        if flow.source is not None:
            offset = model.compartments[flow.source].offset
            leaves[flow.rate_offset : flow.rate_offset + flow.cells] = offset + np.arange(flow.cells)
    enters = np.concatenate([f.to_cells for f in model.flows]) if model.flows else np.zeros(0, np.int64)
    return leaves, enters.astype(np.int64)


def _window(array: np.ndarray, offset: int, width: int, shape: tuple[int, ...]) -> np.ndarray:
    """Columns [offset, offset + width) of a 2-d array seen as (rows, *shape): a view, never a copy."""
    window = array[:, offset : offset + width].view()
    window.shape = (array.shape[0], *shape)  # raises instead of silently copying
    return window


def _environment(
    model: CompiledModel, state: np.ndarray, step: int, parameters: dict[str, np.ndarray], coupled: list
) -> Environment:
    """What rate expressions read at the start of `step`, given the parameters in force then."""
    values: dict[str, np.ndarray] = {}
    for coupling, coupling_state in zip(model.couplings, coupled, strict=True):
        values.update(coupling.values(coupling_state, step, parameters))
    # couplings read the counts at the start of the step in `update`, after the flows: a copy, since the
    # step engines write the next state into a buffer the views could share
    counts = state.copy() if model.couplings else state
    return Environment(
        compartments=_compartments(model, counts),
        parameters=parameters,
        schedules=model.derived("schedules_by_step", lambda: _schedules_by_step(model))[step],
        t=float(step * model.dt),
        coupled=values,
        counts=counts,
    )


def _schedules_by_step(model: CompiledModel) -> list[dict[str, float]]:
    """Each schedule's value at each reporting step, as the expressions' environment holds them."""
    return [{name: float(series[step]) for name, series in model.schedules.items()} for step in range(model.steps + 1)]


class _Compartments(Mapping):
    """Compartment name -> (R, *aligned) view of a flat (R, cells) state, made when an expression reads it
    (a step's rates read a few of the model's compartments)."""

    def __init__(self, layouts: dict[str, tuple[int, int, tuple[int, ...]]], state: np.ndarray) -> None:
        self.layouts, self.state = layouts, state

    def __getitem__(self, name: str) -> np.ndarray:
        start, stop, aligned = self.layouts[name]
        return self.state[:, start:stop].reshape(self.state.shape[0], *aligned)

    def __iter__(self) -> Iterator[str]:
        return iter(self.layouts)

    def __len__(self) -> int:
        return len(self.layouts)


def _compartments(model: CompiledModel, state: np.ndarray) -> _Compartments:
    layouts = model.derived("compartment_windows", lambda: {
        c.name: (c.offset, c.offset + c.size, c.aligned) for c in model.compartments})
    return _Compartments(layouts, state)


def _moved_on(
    model: CompiledModel, environment: Environment, state: np.ndarray, step: int, fraction: float
) -> Environment:
    """The environment `fraction` of the way through reporting step `step`, with the state then;
    parameters, schedules and coupled values stay those of the step."""
    return replace(environment, compartments=_compartments(model, state), t=float((step + fraction) * model.dt),
                   counts=state)


def _fill_rates(
    context: BlockContext,
    environment: Environment,
    state: np.ndarray,
    rates: np.ndarray,
    views: list[np.ndarray],
    due: np.ndarray | None = None,
    occupancy: tuple[sparse.csr_matrix | None, float] | None = None,
) -> None:
    """Evaluate the flows' rates into `rates` through `views`, their per-flow (R, *context) windows:
    every flow, or those marked in `due` (the others keep the values they hold).

    With `occupancy` = (exit matrix, dt) (the step engines), an inflow from a source reads each
    compartment cell at its mean occupancy over the step, n (1 - exp(-H dt)) / (H dt) for total exit
    hazard H: the person-time that the cell's outflows are drawn from. So inflows and outflows share one
    discretisation, and births mu N balance deaths mu from every compartment exactly (in expectation).
    `state` (R, cells) is the state the rates apply to. Invalid rates are left as they are: the caller
    checks them (diagnose.check_rates, or fused into the step kernel).
    """
    model = context.model
    due = [True] * len(model.flows) if due is None else due.tolist()
    for flow, view, evaluate in zip(model.flows, views, due, strict=True):
        if evaluate and flow.source is not None:
            view[...] = flow.rate(environment)
    sources = environment
    if occupancy is not None and occupancy[0] is not None:
        exit_matrix, dt = occupancy
        finite = np.where(np.isfinite(rates), rates, 0.0)  # empty cells' 0/0 move no one; others fail below
        exposure = exit_matrix.T.dot(finite.T).T * dt
        mean = state * np.where(exposure > 1e-9, -np.expm1(-exposure) / np.maximum(exposure, 1e-300), 1 - exposure / 2)
        sources = replace(environment, compartments=_compartments(model, mean), counts=mean)
    for flow, view, evaluate in zip(model.flows, views, due, strict=True):
        if evaluate and flow.source is None:
            view[...] = flow.rate(sources)


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


def _outcome(
    outcome,
    tables: OutcomeTables,
    state_terms: np.ndarray,
    moved_terms: np.ndarray,
    dt: float,
) -> np.ndarray:
    """An outcome over (replicate, time, *by), combining its terms' reduced series, in its unit.

    A flow term is the persons moved during the step that ends at each date (0 at the start): divided
    by the step's `dt` months it is a rate in persons per month, or summed over steps, a cumulative count.
    """
    terms = {}
    for term in outcome.terms:
        source, first, by_shape = tables.columns[(outcome.name, term)]
        series = state_terms if source == "state" else moved_terms
        width = int(np.prod(by_shape))
        terms[term] = series[:, :, first : first + width].reshape(*series.shape[:2], *by_shape)
        if source == "moved" and not outcome.cumulative:
            terms[term] = terms[term] / dt
    shape = (*state_terms.shape[:2], *next(iter(terms.values())).shape[2:])
    value = np.broadcast_to(np.asarray(outcome.evaluate(terms), dtype=float), shape)
    # a new array, never a view of the terms (outcomes share them) nor a read-only broadcast
    value = np.cumsum(value, axis=0) if outcome.cumulative else np.array(value)
    if outcome.factor != 1.0:
        value *= outcome.factor
    # A ratio with an empty denominator (0/0, x/0) is undefined: NaN, never inf (see summary.bands).
    value[np.isinf(value)] = np.nan
    return np.moveaxis(value, 0, 1)


def _assemble(
    model: CompiledModel,
    pieces: list[dict[str, np.ndarray]],
    seed: int,
    engine: Engine,
    first_replicate: int,
    keep_compartments: bool,
) -> xr.Dataset:
    def joined(name: str) -> np.ndarray:
        # one block's arrays are not views of one another (no copy needed); blocks are joined
        data = pieces[0][name] if len(pieces) == 1 else np.concatenate([piece[name] for piece in pieces])
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
            ("replicate", "time", *outcome.by), joined(outcome.name), {"kind": "outcome", "units": outcome.unit}
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
        substeps=model.substeps if engine != "ode" else 0,
        seed=seed,
        policies=",".join(f"{k}={v:g}" for k, v in model.interventions.items()),
    )
    return dataset

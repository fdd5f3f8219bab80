"""Summaries of an ensemble: bands (median and 5-95%), never a bare number."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from aftermath.scenario.schema import Scenario, month_label, parse_month

if TYPE_CHECKING:
    from aftermath.model.compile import CompiledModel

BLOCK_BYTES = 96_000_000
"""Most recorded series (8 bytes a number, see `recorded_numbers`) that `run_in_blocks` simulates at once: 47
replicates of the default scenario (2 MB each). Smaller blocks hold less but cost more CPU: each `simulate` call
pays about 1.4 s of per-step Python work for the sub-models whatever its replicates (measured on the default
scenario, 8 against 48 replicates), and uses one thread per 16 replicates (engines/simulate.py)."""

LOW, HIGH = 0.05, 0.95
BAND = (LOW, 0.5, HIGH)
"""The levels of a band: its low end, the median, its high end."""


def quantiles(data: ArrayLike, levels: Sequence[float] = BAND, axis: int = 0) -> np.ndarray:
    """Quantiles of `data` over `axis` (the replicates): shape (len(levels), *the other axes of data).

    numpy's default (linear, Hyndman-Fan type 7) quantile. A run where a value is undefined (NaN, e.g.
    a share of nobody) is left out; where it is undefined in every run the quantile is NaN.
    This is the one place bands are computed (tables, report, fit check, network export).
    """
    moved = np.moveaxis(np.asarray(data, dtype=float), axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    values = np.quantile(flat, levels, axis=0)
    missing = np.isnan(flat)
    partly = missing.any(axis=0) & ~missing.all(axis=0)
    if partly.any():  # rare, and nanquantile is slow: only where some runs are undefined
        values[:, partly] = np.nanquantile(flat[:, partly], levels, axis=0)
    return values.reshape(len(levels), *moved.shape[1:])


def band(values: ArrayLike) -> tuple[float, float, float]:
    """(median, low, high) of one number over runs (`values` 1-D, one per run); see `quantiles`."""
    low, median, high = quantiles(np.ravel(values))
    return float(median), float(low), float(high)


def outcome_names(dataset: xr.Dataset) -> list[str]:
    return [name for name, variable in dataset.data_vars.items() if variable.attrs.get("kind") == "outcome"]


def key_dates(scenario: Scenario, count: int = 5) -> list[str]:
    """The scenario's `key_dates`, or `count` dates evenly spread over the horizon, on the step grid."""
    if scenario.key_dates:
        return [month_label(m) for m in scenario.key_dates]
    from aftermath.scenario.validate import STEP_MONTHS

    first, last, step = scenario.time.start, scenario.time.end, STEP_MONTHS[scenario.time.step]
    picks = first + step * np.linspace(0, (last - first) // step, count).round().astype(int)
    return sorted({month_label(int(m)) for m in picks})


def _months(grid: np.ndarray) -> int:
    return int((grid[1] - grid[0]).astype(int)) if len(grid) > 1 else 1


def bands(
    dataset: xr.Dataset,
    dates: Sequence[str] | None = None,
    outcomes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per outcome, date and stratum: median and the 5-95% band over replicates.

    An outcome undefined in a replicate (NaN: a ratio whose denominator is empty, see `simulate`) is left
    out of that date's band; where it is undefined in every replicate, median, low and high are NaN
    ('undefined' on the terminal, null in JSON). No warning is printed for it.

    `dates` ('YYYY-MM') must be steps of the run (the rule of docs/engines.md): a date outside the
    horizon or between two quarterly or yearly steps raises ValueError naming it and the grid.
    """
    rows = []
    wanted = list(outcomes) if outcomes is not None else outcome_names(dataset)
    times = dataset["time"].values
    if dates is not None:
        chosen = np.array([np.datetime64(month_label(parse_month(d)), "M") for d in dates]).astype(times.dtype)
        missing = [str(d) for d, c in zip(dates, chosen, strict=True) if c not in times]
        if missing:
            grid = times.astype("datetime64[M]")
            raise ValueError(
                f"the date {missing[0]} is not a step of this run; expected a date on its grid "
                f"({len(grid)} steps from {grid[0]} to {grid[-1]}, every {_months(grid)} months)"
            )
        times = np.unique(chosen)
    labels = pd.to_datetime(times).strftime("%Y-%m").to_numpy()
    for name in wanted:
        data = dataset[name].sel(time=times).transpose("replicate", "time", ...)
        low, median, high = (level.ravel() for level in quantiles(data.values))
        # rows in C order of (time, *strata), as the stratum labels' product
        cells = np.indices(data.shape[1:]).reshape(data.ndim - 1, -1)
        columns: dict[str, Any] = {"outcome": name, "date": labels[cells[0]]}
        columns.update({dim: np.asarray(data[dim].values)[cell] for dim, cell in zip(data.dims[2:], cells[1:],
                                                                                     strict=True)})
        rows.append(pd.DataFrame({**columns, "median": median, "low": low, "high": high}))
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    ordered = ["outcome", "date", *[c for c in table.columns if c not in ("outcome", "date", "low", "median", "high")]]
    return table[[*ordered, "median", "low", "high"]] if rows else table


def check_banded_memory(model: CompiledModel, replicates: int, dates: Sequence[str]) -> int:
    """Refuse (ResourceError) a `banded_runs` whose kept outcomes (8 bytes a number, per replicate, date and
    outcome stratum) would not fit in physical memory; returns the outcome numbers per replicate and month."""
    from aftermath.resources import require_memory

    numbers = sum(int(np.prod([len(model.dims[d]) for d in o.by])) for o in model.outcomes)
    require_memory(8.0 * replicates * len(dates) * numbers, f"{replicates:,} replicates")
    return numbers


def recorded_numbers(model: CompiledModel) -> int:
    """Numbers `simulate(keep_compartments=False)` records per replicate and reporting time: every outcome
    stratum, every output cell of the sub-models (couplings), and the two boundary counts."""
    outcomes = sum(int(np.prod([len(model.dims[d]) for d in o.by])) for o in model.outcomes)
    outputs = sum(int(np.prod([len(labels) for _, labels in dims]))
                  for coupling in model.couplings for dims in coupling.outputs.values())
    return outcomes + outputs + 2


def time_grid(model: CompiledModel) -> np.ndarray:
    """The reporting times of `simulate`'s results: (steps + 1,) datetime64[M]."""
    return np.array([model.month_label(i) for i in range(model.steps + 1)], dtype="datetime64[M]")


def at_dates(dataset: xr.Dataset, dates: Sequence[str]) -> xr.Dataset:
    """The outcomes of `dataset` at `dates` (YYYY-MM, on the run's grid), as a copy that holds nothing else.
    Raises ValueError naming a date that is not a step of the run (as `bands` does)."""
    outcomes = dataset[outcome_names(dataset)]
    chosen = np.array([np.datetime64(month_label(parse_month(d)), "M") for d in dates]).astype(outcomes["time"].dtype)
    if not np.isin(chosen, outcomes["time"].values).all():
        bands(outcomes, dates)  # raises ValueError naming the date and the grid
    return outcomes.sel(time=np.unique(chosen)).copy(deep=True)


def run_in_blocks(
    model: CompiledModel,
    replicates: int,
    seed: int,
    keep: Callable[[xr.Dataset], Mapping[str, xr.Dataset]],
    engine: str = "stochastic",
    parameters: Mapping[str, np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> dict[str, xr.Dataset]:
    """`keep(simulate(model, replicates, ...))` without holding every replicate's series: replicates run in
    blocks (each `simulate` call records at most BLOCK_BYTES, see `recorded_numbers`), `keep` reduces each
    block to what is wanted ({name: Dataset with a `replicate` dim}), and the blocks' pieces are joined
    along `replicate`. Memory grows with what `keep` keeps, not with the series length times replicates.

    The numbers equal the whole run's as long as `keep` works replicate by replicate: every random draw is
    keyed by the replicate's global index (`simulate(first_replicate=...)`). The ODE engine runs in one block:
    it integrates a block's runs as one system, whose adaptive steps depend on which runs are in it.
    `parameters` are per-run rows (replicate r uses row r); `options` go to `simulate` (e.g. `ode=`). Raises
    what `simulate` and `keep` raise.
    """
    from aftermath.engines.simulate import simulate

    block = int(np.clip(BLOCK_BYTES // max(8 * (model.steps + 1) * recorded_numbers(model), 1), 1, replicates))
    if engine == "ode":
        block = replicates
    kept: dict[str, list[xr.Dataset]] = {}
    for start in range(0, replicates, block):
        stop = min(start + block, replicates)
        rows = {name: np.asarray(values)[start:stop] for name, values in (parameters or {}).items()}
        dataset = simulate(model, replicates=stop - start, seed=seed, engine=engine, parameters=rows,  # type: ignore[arg-type]
                           keep_compartments=False, first_replicate=start, progress=progress, **options)
        for name, piece in keep(dataset).items():
            kept.setdefault(name, []).append(piece)
        del dataset
    return {name: xr.concat(pieces, dim="replicate") if len(pieces) > 1 else pieces[0]
            for name, pieces in kept.items()}


def banded_runs(
    model: CompiledModel,
    dates: Sequence[str],
    replicates: int,
    seed: int,
    engine: str = "stochastic",
    parameters: Mapping[str, np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """`bands(simulate(model, replicates, ...), dates)` without holding every replicate's series: only the
    outcomes at `dates` are kept from each block of replicates (`run_in_blocks`, `at_dates`); the same numbers
    as the whole run's. Raises what `simulate` and `bands` raise."""
    check_banded_memory(model, replicates, dates)
    kept = run_in_blocks(model, replicates, seed, lambda block: {"outcomes": at_dates(block, dates)}, engine=engine,
                         parameters=parameters, progress=progress, **options)
    return bands(kept["outcomes"], dates)

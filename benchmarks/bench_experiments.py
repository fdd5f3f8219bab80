"""Benchmark experiments: ensemble throughput by executor, and what common random numbers buy.

Throughput: one ensemble of the scenario (parameter samples x replicates, baseline only) run
serially (one core: the kernel on one thread), in local worker processes and on a Dask
LocalCluster with the same number of workers, in replicate-months per second (members x months
/ wall-clock seconds, with and without the executor's start-up) and parallel efficiency (speed-up /
workers). The
three results are checked to be identical array for array. Then the same ensemble into the DuckDB
store (writes included).

Common random numbers: the effect of a policy on an outcome at a date, estimated member by member
as policy - baseline, with the policy run on the baseline's seed (CRN) or on another seed
(independent streams); the figure is the ratio of the two variances (how many times fewer members
CRN needs for the same precision), with parameters fixed and with parameter samples shared.

    .venv/bin/python benchmarks/bench_experiments.py            # full run (several minutes)
    .venv/bin/python benchmarks/bench_experiments.py --quick    # smoke run, small sizes
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numba
import numpy as np
import xarray as xr

from aftermath.experiments import (
    EnsembleResult,
    ExecutorSpec,
    Experiment,
    design_experiment,
    read_scenario,
    run_experiment,
    run_stored,
)
from aftermath.experiments.design import layout_of
from aftermath.experiments.results import from_ranges
from aftermath.experiments.runner import run_ranges
from aftermath.store import Store
from aftermath.summary import key_dates

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    samples: int
    replicates: int
    crn_members: int
    crn_samples: int


FULL = Sizes(samples=50, replicates=10, crn_members=300, crn_samples=200)
QUICK = Sizes(samples=4, replicates=3, crn_members=12, crn_samples=12)


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def identical(first: EnsembleResult, second: EnsembleResult) -> bool:
    return all(
        np.array_equal(first.arms[label][name].values, second.arms[label][name].values, equal_nan=True)
        for label in first.arms for name in first.series
    )


def timed_run(experiment: Experiment, spec: ExecutorSpec) -> tuple[EnsembleResult, float, float]:
    """(result, wall seconds, start-up seconds): start-up is the wait for the first range less its compute."""
    started = time.perf_counter()
    results, startup = [], None
    for result in run_ranges(experiment, experiment.ranges(), spec):
        if startup is None:
            startup = time.perf_counter() - started - result.seconds
        results.append(result)
    wall = time.perf_counter() - started
    labels = [arm.label for arm in experiment.arms]
    return from_ranges(layout_of(experiment), labels, results, experiment.replicates), wall, startup or 0.0


def throughput(experiment: Experiment, workers: int, dask: bool) -> None:
    months = len(layout_of(experiment).times)
    work = experiment.members * months
    serial, serial_seconds, _ = timed_run(experiment, ExecutorSpec(workers=1))
    print(f"serial, 1 core: {work / serial_seconds:,.0f} replicate-months/s ({experiment.members} members x "
          f"{months} months, {len(experiment.ranges())} ranges, in {serial_seconds:.1f} s)")
    runs = [("local processes", ExecutorSpec(workers=workers))]
    if dask:
        runs.append(("dask LocalCluster", ExecutorSpec(workers=workers, dask="local")))
    for name, spec in runs:
        result, seconds, startup = timed_run(experiment, spec)
        speedup, steady = serial_seconds / seconds, serial_seconds / (seconds - startup)
        print(f"{name}, {workers} workers: {work / seconds:,.0f} replicate-months/s, speed-up {speedup:.2f}x, "
              f"parallel efficiency {speedup / workers:.0%} ({seconds:.1f} s); without the {startup:.1f} s "
              f"start-up: {work / (seconds - startup):,.0f} replicate-months/s, efficiency {steady / workers:.0%}; "
              f"identical to serial: {identical(serial, result)}")
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.duckdb")
        _, seconds = timed(lambda: run_stored(store, experiment, "ensemble", ExecutorSpec(workers=workers)))
        size = sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**20
        print(f"into the DuckDB store, {workers} processes: {work / seconds:,.0f} replicate-months/s "
              f"({seconds:.1f} s, {size:.1f} MiB, {size * 2**20 / work:.0f} bytes per replicate-month)")


def effect(result: EnsembleResult, other: EnsembleResult, arm: str, outcome: str, date: str) -> np.ndarray:
    """Per member: `arm` in `other` minus the baseline in `result`, at one date (summed over strata)."""
    def value(dataset: xr.Dataset) -> np.ndarray:
        data = dataset[outcome].sel(time=np.datetime64(date, "M"))
        return data.sum([d for d in data.dims if d != "replicate"]).values

    return value(other.arms[arm]) - value(result.arms["baseline"])


def crn_reduction(text: str, file: str, policy: str, outcome: str, date: str, samples: int, members: int,
                  workers: int) -> float:
    """Ratio var(independent) / var(CRN) of the per-member effect estimate."""
    replicates = 1 if samples > 1 else members
    paired = design_experiment(text, file, samples=samples, replicates=replicates, arms=[{}, {policy: None}],
                               seed=1, draws=None if samples > 1 else {})
    # The same parameter draws, another seed: only the random streams differ.
    alone = design_experiment(text, file, samples=samples, replicates=replicates, arms=[{policy: None}], seed=2,
                              draws=paired.draws)
    spec = ExecutorSpec(workers=workers)
    both, other = run_experiment(paired, spec), run_experiment(alone, spec)
    crn = effect(both, both, policy, outcome, date)
    independent = effect(both, other, policy, outcome, date)
    where = "parameters fixed" if samples == 1 else f"{samples} parameter samples shared"
    ratio = independent.var(ddof=1) / crn.var(ddof=1)
    print(f"CRN, {where}, {len(crn)} members: effect of {policy} on {outcome} at {date}: "
          f"{crn.mean():,.1f} +- {crn.std(ddof=1) / np.sqrt(len(crn)):,.1f} (CRN) vs "
          f"{independent.mean():,.1f} +- {independent.std(ddof=1) / np.sqrt(len(crn)):,.1f} (independent); "
          f"variance ratio {ratio:,.1f}x")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=None, help="scenario file or shipped name (default: the default one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--policy", default="border_intelligence")
    parser.add_argument("--outcome", default="imprisoned_at_home")
    parser.add_argument("--date", default=None, help="YYYY-MM (default: the scenario's last key date)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    numba.set_num_threads(1)  # the serial baseline uses one core, like each worker
    text, file, scenario = read_scenario(args.scenario)
    date = args.date or key_dates(scenario)[-1]
    print(f"aftermath experiments benchmark: {scenario.name}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    warm = design_experiment(text, file, samples=1, replicates=2)
    run_experiment(warm)
    experiment = design_experiment(text, file, samples=sizes.samples, replicates=sizes.replicates, seed=1)
    throughput(experiment, args.workers, not args.no_dask)
    crn_reduction(text, file, args.policy, args.outcome, date, 1, sizes.crn_members, args.workers)
    crn_reduction(text, file, args.policy, args.outcome, date, sizes.crn_samples, sizes.crn_samples, args.workers)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

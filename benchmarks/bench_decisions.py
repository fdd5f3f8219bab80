"""Benchmark decisions: a Sobol analysis of the default scenario and a robust policy search.

Sobol: N base samples of all the default scenario's uncertain parameters (N * (D + 2) deterministic
runs) on W worker processes, two outcomes at the key dates, in memory; wall-clock and CPU seconds
(this process and its finished worker processes) of the runs and of SALib's analysis, runs per
second, and the seconds per run that the full N = 512 design would take (it is linear in runs).
Search: an NSGA-II search over the costed levers for E policy evaluations on S parameter samples
each (two objectives, 90th percentile, budget 4), wall and CPU seconds; with --search-store the
evaluations are recorded as `aftermath optimise` records them (then `aftermath discover RUN`).

    .venv/bin/python benchmarks/bench_decisions.py                   # N=512 on 2 workers, 200 policies (the issue)
    .venv/bin/python benchmarks/bench_decisions.py --no-search       # only the Sobol analysis
    .venv/bin/python benchmarks/bench_decisions.py --no-sobol --search-store search.duckdb   # only the search, stored
    .venv/bin/python benchmarks/bench_decisions.py --samples 64      # a shorter Sobol run (scales linearly)
    .venv/bin/python benchmarks/bench_decisions.py --part 400 --evaluations 24   # measure a part, extrapolate
    .venv/bin/python benchmarks/bench_decisions.py --quick           # smoke run on the synthetic scenario

With --part K only the first K runs of the N-sample design are run and timed (the cost per run
does not depend on where in the design it lies), SALib's analysis of the whole design is timed on
outputs of the same shape, and the full time is given as runs / measured rate + analysis. The
search's time grows with its evaluations (each policy runs its samples and compiles its model),
so a shorter search is extrapolated the same way.
"""

from __future__ import annotations

import argparse
import resource
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
import psutil

from aftermath.decisions import optimise, parse_objective, parse_target, scenario_sensitivity
from aftermath.decisions.evaluate import evaluate_targets, scenario_experiment
from aftermath.decisions.sensitivity import QUANTILE_MARGIN, analyse, design, design_size
from aftermath.experiments import ExecutorSpec, read_scenario
from aftermath.experiments.sampling import draws_from_unit, uncertain_parameters
from aftermath.store.database import Store
from aftermath.summary import key_dates

SYNTHETIC = Path(__file__).resolve().parents[1] / "tests" / "data" / "two_levers.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512, help="Sobol base samples N (a power of two).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--evaluations", type=int, default=200, help="Policies the search runs.")
    parser.add_argument("--search-samples", type=int, default=10, help="Parameter samples per policy.")
    parser.add_argument("--part", type=int, default=None, help="Run only this many runs of the design; extrapolate.")
    parser.add_argument("--quick", action="store_true", help="The synthetic scenario, small sizes.")
    parser.add_argument("--no-sobol", dest="sobol", action="store_false", help="Skip the Sobol analysis.")
    parser.add_argument("--no-search", dest="search", action="store_false", help="Skip the policy search.")
    parser.add_argument("--search-store", type=Path, default=None, help="Record the search in this run store.")
    args = parser.parse_args()
    reference = SYNTHETIC if args.quick else None
    text, file, scenario = read_scenario(reference)
    samples = 64 if args.quick else args.samples
    names = ["remaining"] if args.quick else ["remnant_strength", "returnees_operational"]
    targets = [parse_target(f"{name}@{date}") for name in names for date in key_dates(scenario)]
    parameters = len(uncertain_parameters(scenario))
    if args.sobol:
        sobol(text, file, targets, samples, parameters, args.part, args.workers)
    if args.search:
        search(text, file, scenario, names, args)


def sobol(text: str, file: str, targets: list, samples: int, parameters: int, part: int | None, workers: int) -> None:
    """The whole design (runs, then SALib's analysis, each timed), or a part of it (`sobol_part`)."""
    runs = design_size("sobol", samples, parameters)
    print(f"Sobol of {file}: N={samples}, D={parameters}: {runs:,} deterministic runs on {workers} workers")
    if part:
        sobol_part(text, file, targets, samples, part, workers)
        return
    marks = [(time.perf_counter(), cpu_seconds())]

    def stage(what: str, total: int | None, unit: str) -> None:
        marks.append((time.perf_counter(), cpu_seconds()))  # the runs are over, SALib's analysis starts

    scenario_sensitivity(text, file, targets, "sobol", samples, executor=ExecutorSpec(workers), stage=stage)
    marks.append((time.perf_counter(), cpu_seconds()))
    (wall0, cpu0), (wall1, cpu1), (wall2, cpu2) = marks
    full = design_size("sobol", 512, parameters)
    print(f"  sobol runs: {wall1 - wall0:,.1f} s wall, {cpu1 - cpu0:,.1f} CPU s, {runs / (wall1 - wall0):,.1f} runs/s")
    print(f"  sobol analysis ({len(targets)} outcome-dates): {wall2 - wall1:,.1f} s wall, {cpu2 - cpu1:,.1f} CPU s")
    print(f"  sobol whole: {wall2 - wall0:,.1f} s wall, {cpu2 - cpu0:,.1f} CPU s; N=512 ({full:,} runs) at this "
          f"rate: {full / (runs / (wall1 - wall0)) + (wall2 - wall1):,.0f} s")


def search(text: str, file: str, scenario, names: list[str], args: argparse.Namespace) -> None:
    """An NSGA-II search of `args.evaluations` policies, timed (wall and CPU); stored if asked."""
    objectives = [parse_objective(f"{names[0]}@{key_dates(scenario)[-1]}")]
    if not args.quick:
        objectives.append(parse_objective(f"returnees_operational@{key_dates(scenario)[-1]}"))
    evaluations = 24 if args.quick else args.evaluations
    search_samples = 2 if args.quick else args.search_samples
    started, cpu = time.perf_counter(), cpu_seconds()
    population = 8 if args.quick else min(20, evaluations)  # NSGA-II needs at least one population's evaluations
    store = None if args.search_store is None else Store(args.search_store)
    result = optimise(text, file, objectives, budget=4.0, metric="p90", evaluations=evaluations, population=population,
                      samples=search_samples, executor=ExecutorSpec(args.workers), store=store)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    where = "" if result.run_id is None else f", stored as run {result.run_id} in {args.search_store}"
    print(f"Search of {scenario.name}: {result.evaluations} policies x {search_samples} samples on {args.workers} "
          f"workers in {seconds:,.1f} s wall, {cpu:,.1f} CPU s ({cpu / result.evaluations:.2f} per policy), "
          f"{result.evaluations / seconds:,.2f} policies/s, Pareto set of {len(result.pareto)}{where}")
    if result.evaluations < 200:
        print(f"  search of 200 policies: {200 / (result.evaluations / seconds):,.0f} s wall at this rate; "
              f"{200 * cpu / result.evaluations:,.0f} CPU s")


def cpu_seconds() -> float:
    """CPU seconds of this process and of its worker processes: unlike the wall time, not inflated by other
    jobs on the machine. The workers are started by a forkserver (a child of this process that stays up),
    whose finished children's time the OS adds to its own `children` times; each pool is shut down, and
    its workers waited for, when its runs are done, so a reading between two experiments counts them all."""
    total = sum(usage.ru_utime + usage.ru_stime
                for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))
    for child in psutil.Process().children():
        with suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def sobol_part(text: str, file: str, targets: list, samples: int, part: int, workers: int) -> None:
    """Time the first `part` runs of the design and SALib's analysis of all of it; print the extrapolation."""
    _, _, scenario = read_scenario(file)
    plan = design("sobol", uncertain_parameters(scenario), samples)
    draws = draws_from_unit(scenario, plan.names, plan.points[:part], QUANTILE_MARGIN)
    experiment = scenario_experiment(text, file, draws, engine="deterministic")
    started, cpu = time.perf_counter(), cpu_seconds()
    evaluate_targets(experiment, targets, ExecutorSpec(workers))
    run_seconds, run_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    outputs = plan.points @ np.random.default_rng(0).random((len(plan.names), len(targets)))
    started = time.perf_counter()
    analyse(plan, outputs, [t.label for t in targets])
    analysis = time.perf_counter() - started
    rate = part / run_seconds
    print(f"  sobol: {part} of {len(plan.points):,} runs in {run_seconds:,.1f} s wall ({rate:,.2f} runs/s); "
          f"analysis of all {len(plan.points):,} x {len(targets)} outputs {analysis:,.1f} s; whole N={samples}: "
          f"{len(plan.points) / rate + analysis:,.0f} s at this rate")
    print(f"  sobol: {run_cpu / part:.3f} CPU s per run; whole N={samples} on 2 otherwise idle cores: "
          f"{len(plan.points) * run_cpu / part / 2 + analysis:,.0f} s")

if __name__ == "__main__":
    main()

"""Benchmark decisions: a Sobol analysis of the default scenario and a robust policy search.

Sobol: N base samples of all the default scenario's uncertain parameters (N * (D + 2) deterministic
runs) on W worker processes, two outcomes at the key dates; wall-clock seconds, runs per second,
and the seconds per run that the full N = 512 design would take (it is linear in runs). Search:
an NSGA-II search over the costed levers for E policy evaluations on S parameter samples each.

    .venv/bin/python benchmarks/bench_decisions.py                   # N=512 on 2 workers, 200 policies
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
from pathlib import Path

import numpy as np

from aftermath.decisions import optimise, parse_objective, parse_target, scenario_sensitivity
from aftermath.decisions.evaluate import evaluate_targets, scenario_experiment
from aftermath.decisions.sensitivity import QUANTILE_MARGIN, analyse, design, design_size
from aftermath.experiments import ExecutorSpec, read_scenario
from aftermath.experiments.sampling import draws_from_unit, uncertain_parameters
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
    args = parser.parse_args()
    reference = SYNTHETIC if args.quick else None
    text, file, scenario = read_scenario(reference)
    samples = 64 if args.quick else args.samples
    names = ["remaining"] if args.quick else ["remnant_strength", "returnees_operational"]
    targets = [parse_target(f"{name}@{date}") for name in names for date in key_dates(scenario)]
    parameters = len(uncertain_parameters(scenario))
    runs = design_size("sobol", samples, parameters)
    print(f"Sobol of {scenario.name}: N={samples}, D={parameters}: {runs:,} deterministic runs on "
          f"{args.workers} workers")
    if args.part:
        sobol_part(text, file, targets, samples, args.part, args.workers)
    else:
        started = time.perf_counter()
        scenario_sensitivity(text, file, targets, "sobol", samples, executor=ExecutorSpec(args.workers))
        seconds = time.perf_counter() - started
        full = design_size("sobol", 512, parameters)
        print(f"  sobol: {seconds:,.1f} s wall, {runs / seconds:,.1f} runs/s; "
              f"N=512 ({full:,} runs) at this rate: {full / (runs / seconds):,.0f} s")

    objectives = [parse_objective(f"{names[0]}@{key_dates(scenario)[-1]}")]
    if not args.quick:
        objectives.append(parse_objective(f"returnees_operational@{key_dates(scenario)[-1]}"))
    evaluations = 24 if args.quick else args.evaluations
    search_samples = 2 if args.quick else args.search_samples
    started, cpu = time.perf_counter(), cpu_seconds()
    population = 8 if args.quick else min(20, evaluations)  # NSGA-II needs at least one population's evaluations
    result = optimise(text, file, objectives, budget=4.0, metric="p90", evaluations=evaluations, population=population,
                      samples=search_samples, executor=ExecutorSpec(args.workers))
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(f"  search: {result.evaluations} policies x {search_samples} samples in {seconds:,.1f} s wall, "
          f"{result.evaluations / seconds:,.2f} policies/s, Pareto set of {len(result.pareto)}")
    if args.part:
        print(f"  search of 200 policies: {200 / (result.evaluations / seconds):,.0f} s at this rate")
        if args.workers == 1:
            print(f"  search: {cpu / result.evaluations:.2f} CPU s per policy; 200 policies on 2 otherwise idle "
                  f"cores: {200 * cpu / result.evaluations / 2:,.0f} s")


def cpu_seconds() -> float:
    """CPU seconds of this process: with --workers 1 the runs happen here, and this figure, unlike the wall
    time, is not inflated by other jobs on the machine (worker processes are not its children to count)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    if workers == 1:
        print(f"  sobol: {run_cpu / part:.3f} CPU s per run; whole N={samples} on 2 otherwise idle cores: "
              f"{len(plan.points) * run_cpu / part / 2 + analysis:,.0f} s")


if __name__ == "__main__":
    main()

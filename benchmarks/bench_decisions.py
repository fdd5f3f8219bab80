"""Benchmark decisions: a Sobol analysis of the default scenario and a robust policy search.

Sobol: N base samples of all the default scenario's uncertain parameters (N * (D + 2) deterministic
runs) on W worker processes, two outcomes at the key dates; wall-clock seconds, runs per second,
and the seconds per run that the full N = 512 design would take (it is linear in runs). Search:
an NSGA-II search over the costed levers for E policy evaluations on S parameter samples each.

    .venv/bin/python benchmarks/bench_decisions.py                   # N=512 on 2 workers, 200 policies
    .venv/bin/python benchmarks/bench_decisions.py --samples 64      # a shorter Sobol run (scales linearly)
    .venv/bin/python benchmarks/bench_decisions.py --quick           # smoke run on the synthetic scenario
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aftermath.decisions import optimise, parse_objective, parse_target, scenario_sensitivity
from aftermath.decisions.sensitivity import design_size
from aftermath.experiments import ExecutorSpec, read_scenario
from aftermath.experiments.sampling import uncertain_parameters
from aftermath.summary import key_dates

SYNTHETIC = Path(__file__).resolve().parents[1] / "tests" / "data" / "two_levers.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512, help="Sobol base samples N (a power of two).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--evaluations", type=int, default=200, help="Policies the search runs.")
    parser.add_argument("--search-samples", type=int, default=10, help="Parameter samples per policy.")
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
    started = time.perf_counter()
    result = optimise(text, file, objectives, budget=4.0, metric="p90", evaluations=evaluations,
                      population=8 if args.quick else 20, samples=search_samples, executor=ExecutorSpec(args.workers))
    seconds = time.perf_counter() - started
    print(f"  search: {result.evaluations} policies x {search_samples} samples in {seconds:,.1f} s wall, "
          f"{result.evaluations / seconds:,.2f} policies/s, Pareto set of {len(result.pareto)}")


if __name__ == "__main__":
    main()

"""Calibration cost on the default scenario: the deterministic engine's seconds per batch of parameter
sets (to the cutoff), the screening of inert parameters, and optionally a whole `calibrate` run.

    .venv/bin/python benchmarks/bench_calibration.py [--steps N] [--method laplace|emcee] [--walkers W]

Prints medians of three timings per batch size and, with --steps, the whole calibration's wall and CPU
time and its diagnostics (laplace: effective sample size and Pareto k of the weights; emcee: acceptance,
largest R-hat, smallest ESS).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from aftermath.inference.calibration import Problem, calibrate
from aftermath.scenario.loader import load_scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default=None)
    parser.add_argument("--until", default="2017-12")
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--method", default="laplace", choices=("laplace", "emcee"))
    parser.add_argument("--walkers", type=int, default=None)
    parser.add_argument("--batches", default="1,32,128,512")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    problem = Problem(scenario, args.until)
    rng = np.random.default_rng(0)
    problem.model_values(rng.standard_normal((2, len(problem.names))))  # compile the kernels
    for size in map(int, args.batches.split(",")):
        times = []
        for _ in range(3):
            z = rng.standard_normal((size, len(problem.names)))
            start = time.perf_counter()
            problem.model_values(z)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(f"batch {size:5d}: {median:.3f} s, {median / size * 1000:.2f} ms per parameter set")
    start = time.perf_counter()
    inert = problem.screen(0)
    print(f"screening: {time.perf_counter() - start:.1f} s; {len(problem.active)} of {len(problem.names)} "
          f"parameters change an observed outcome; inert: {', '.join(inert)}")
    if args.steps:
        start, cpu = time.perf_counter(), time.process_time()
        posterior = calibrate(scenario, until=args.until, method=args.method, steps=args.steps, walkers=args.walkers,
                              seed=1)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        d = posterior.diagnostics
        if args.method == "laplace":
            print(f"calibrate (laplace): {wall:.0f} s wall, {cpu:.0f} s CPU for {d['samples']} proposals "
                  f"({d['evaluations']} model runs, mode in {d['iterations']} iterations); ESS {d['ess']:.0f}, "
                  f"Pareto k {'undefined' if d['pareto_k'] is None else format(d['pareto_k'], '.2f')}")
        else:
            print(f"calibrate (emcee): {wall:.0f} s wall, {cpu:.0f} s CPU for {d['walkers']} walkers x {d['steps']} "
                  f"steps; acceptance {d['acceptance']:.2f}; max R-hat {max(d['rhat'].values()):.3f}; "
                  f"min ESS {min(d['ess'].values()):.0f}")

if __name__ == "__main__":
    main()

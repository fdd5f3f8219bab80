"""Issue 12's engine figures in one run: CPU-second (and wall-clock) medians of 3, one kernel thread.

- the deterministic engine on a batch of parameter samples of the synthetic model (runs per CPU-second),
- the stochastic engine on the synthetic model (replicate-months per CPU-second),
- one deterministic run of the default scenario, compiled once (CPU milliseconds; what the dashboard's
  redraw and a calibration of one walker wait on),
- a deterministic batch of 32 parameter sets of the default scenario (CPU milliseconds per set; what
  calibration's emcee steps wait on).

The targets are judged on CPU time: on a shared machine it shows what the code takes with a core to
itself; the wall-clock figure follows each. With `--compare DIR` the same figures are measured first
for the source tree DIR (e.g. an export of main: `git archive main | tar -x -C DIR`), in a subprocess,
and both are printed side by side (DIR's bench_speed.py need not print wall-clock figures).

    .venv/bin/python benchmarks/bench_speed.py                  # this checkout (about a minute, quiet)
    .venv/bin/python benchmarks/bench_speed.py --compare /tmp/main
    .venv/bin/python benchmarks/bench_speed.py --quick          # smoke run, small sizes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba

import aftermath
from aftermath.scenario.loader import load_scenario
from bench_engines import machine_load, sample_parameters
from synthetic import synthetic_model

TARGETS = {"deterministic": 2_000.0, "stochastic": 12_000.0, "default_run": 50.0}


def medians(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median CPU seconds (this process, all threads) and median wall-clock seconds of `repeats` calls."""
    cpu, wall = [], []
    for _ in range(repeats):
        start, clock = time.process_time(), time.perf_counter()
        action()
        cpu.append(time.process_time() - start)
        wall.append(time.perf_counter() - clock)
    return statistics.median(cpu), statistics.median(wall)


def figures(batch: int, replicates: int, sets: int, repeats: int) -> dict[str, float]:
    """The four figures of this checkout's aftermath, per CPU-second and (keys ending in _wall) per
    wall-clock second (kernels compiled or loaded from cache first)."""
    numba.set_num_threads(1)
    model = synthetic_model().compiled()
    for engine in ("deterministic", "stochastic"):
        aftermath.simulate(model, 2, engine=engine, keep_compartments=False)
    samples = sample_parameters(model, batch, seed=3)
    deterministic = medians(lambda: aftermath.simulate(
        model, batch, engine="deterministic", parameters=samples, keep_compartments=False), repeats)
    stochastic = medians(lambda: aftermath.simulate(model, replicates, seed=11, keep_compartments=False), repeats)
    default = aftermath.compile_model(load_scenario())
    draws = aftermath.draw_parameters(default.scenario, sets, 1)
    aftermath.simulate(default, 1, engine="deterministic")
    aftermath.simulate(default, sets, engine="deterministic", parameters=draws)
    one = medians(lambda: aftermath.simulate(default, 1, engine="deterministic"), repeats)
    many = medians(lambda: aftermath.simulate(default, sets, engine="deterministic", parameters=draws), repeats)
    result = {}
    for suffix, index in (("", 0), ("_wall", 1)):
        result["deterministic" + suffix] = batch / deterministic[index]
        result["stochastic" + suffix] = replicates * model.steps / stochastic[index]
        result["default_run" + suffix] = 1000 * one[index]
        result["default_batch" + suffix] = 1000 * many[index] / sets
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with small sizes")
    parser.add_argument("--compare", type=Path, help="also measure the source tree DIR (its src/) first")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    batch, replicates, sets, repeats = (20, 10, 4, 3) if args.quick else (1_000, 300, 32, 3)
    other = None
    if args.compare is not None:
        command = [sys.executable, __file__, "--json"] + (["--quick"] if args.quick else [])
        environment = {**os.environ, "PYTHONPATH": str(args.compare.resolve() / "src")}
        done = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
        other = json.loads(done.stdout)
    ours = figures(batch, replicates, sets, repeats)
    if args.json:
        print(json.dumps(ours))
        return 0
    print(f"machine: {machine_load()}; CPU-second medians of {repeats} (wall-clock after each), one kernel thread")
    rows = [
        ("deterministic", f"synthetic model, deterministic batch of {batch:,}", "runs per CPU-second"),
        ("stochastic", f"synthetic model, stochastic, {replicates:,} replicates", "replicate-months per CPU-second"),
        ("default_run", "default scenario, 1 deterministic run", "CPU ms"),
        ("default_batch", f"default scenario, deterministic batch of {sets}", "CPU ms per parameter set"),
    ]
    for key, label, unit in rows:
        before = f"{other[key]:>10,.1f} -> " if other else ""
        target = f" (target {'<=' if key == 'default_run' else '>='} {TARGETS[key]:,.0f})" if key in TARGETS else ""
        wall = f"{other[key + '_wall']:,.1f} -> " if other and key + "_wall" in other else ""
        print(f"  {label:<48} {before}{ours[key]:>10,.1f} {unit}{target}; wall-clock {wall}{ours[key + '_wall']:,.1f}")
    if other:
        print(f"  (left of the arrow: {args.compare})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

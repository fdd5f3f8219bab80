"""Benchmark the report of the default scenario with 1,000 runs: build time and file size.

Two phases, timed apart because they answer different questions:
1. the ensemble: 1,000 members of the baseline (parameter samples x stochastic runs), stored in a
   DuckDB run store with the experiments' executor (this is the engine's cost, not the report's);
2. the report of that stored run: load the series, re-run the map's baseline members with their
   compartments kept, compute every band, draw every figure, write one HTML file.
Targets (issue 6): phase 2 under 30 s on this 2-core machine, the file under 10 MB. Phase 1 + 2
is also printed, as the time `aftermath report` takes from nothing.

    .venv/bin/python benchmarks/bench_report.py            # 250 samples x 4 runs = 1,000 members
    .venv/bin/python benchmarks/bench_report.py --quick    # smoke run: 8 x 1 members
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from aftermath import __version__
from aftermath.experiments import ExecutorSpec, design_experiment, read_scenario, run_stored
from aftermath.files import write_text
from aftermath.report.build import STOCK_RUNS, collect_stored, render
from aftermath.store import Store

BUILD_TARGET_S = 30.0
SIZE_TARGET_MB = 10.0


def cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=None, help="scenario file or shipped name (default: the default one)")
    parser.add_argument("--samples", type=int, default=250)
    parser.add_argument("--replicates", type=int, default=4)
    parser.add_argument("--stock-runs", type=int, default=STOCK_RUNS)
    parser.add_argument("--workers", type=int, default=None, help="ensemble worker processes (default: per core)")
    parser.add_argument("--quick", action="store_true", help="8 samples x 1 run, 8 map runs")
    parser.add_argument("--out", type=Path, default=None, help="keep the report here (default: a temporary file)")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.replicates, args.stock_runs = 8, 1, 8

    with tempfile.TemporaryDirectory() as folder:
        text, file, scenario = read_scenario(args.scenario)
        experiment = design_experiment(text, file, samples=args.samples, replicates=args.replicates, seed=1)
        store = Store(Path(folder) / "bench.duckdb")
        started, cpu = time.perf_counter(), cpu_seconds()
        run_id = run_stored(store, experiment, "ensemble", ExecutorSpec(workers=args.workers))
        ensemble_s, ensemble_cpu = time.perf_counter() - started, cpu_seconds() - cpu

        started, cpu = time.perf_counter(), cpu_seconds()
        content = collect_stored(store, run_id, stock_runs=args.stock_runs)
        collected = time.perf_counter()
        page = render(content)
        rendered = time.perf_counter()
        out = write_text(page, args.out or Path(folder) / "report.html")
        build_s, build_cpu = time.perf_counter() - started, cpu_seconds() - cpu
        size_mb = out.stat().st_size / 1e6

    load = os.getloadavg()[0]
    members = experiment.members
    print(f"aftermath {__version__}, scenario {scenario.name}, {members:,} members "
          f"({args.samples} samples x {args.replicates} runs), map from {min(members, args.stock_runs)} runs, "
          f"{os.cpu_count()} cores, load average {load:.1f}")
    print(f"ensemble into the store   {ensemble_s:8.1f} s wall  {ensemble_cpu:8.1f} s CPU")
    print(f"report of the stored run  {build_s:8.1f} s wall  {build_cpu:8.1f} s CPU  "
          f"(summaries and map runs {collected - started:.1f} s, figures and HTML {rendered - collected:.1f} s)")
    print(f"from nothing              {ensemble_s + build_s:8.1f} s wall")
    print(f"file size                 {size_mb:8.2f} MB")
    for name, value, target, unit in (("build", build_s, BUILD_TARGET_S, "s"), ("size", size_mb, SIZE_TARGET_MB, "MB")):
        print(f"{name:<8} {value:8.2f} {unit:<3} target < {target:g} {unit:<3} {'PASS' if value < target else 'MISS'}")


if __name__ == "__main__":
    main()

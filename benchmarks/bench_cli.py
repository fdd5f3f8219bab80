"""Benchmark what an analyst waits for at the command line: start-up, loading, one run end to end, and the
peak memory of a large run. Each figure is the median of --repeat fresh processes (CPU seconds of the
child, user + system, and wall seconds), next to its target (issue 12); the machine's load is printed first,
since wall time on a shared machine says little without it.

    .venv/bin/python benchmarks/bench_cli.py             # medians of 3; `run -n 1000` for peak memory
    .venv/bin/python benchmarks/bench_cli.py --quick     # smoke run: one of each, `run -n 20`
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

AFTERMATH = [sys.executable, "-m", "aftermath"]
LOAD = (
    "import time; from aftermath import load_scenario; t, c = time.perf_counter(), time.process_time(); "
    "load_scenario(); print(time.perf_counter() - t, time.process_time() - c); "
    "t, c = time.perf_counter(), time.process_time(); load_scenario(); "
    "print(time.perf_counter() - t, time.process_time() - c)"
)


def timed(command: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """(wall s, CPU s of the child, its peak resident KiB, stdout) of one fresh process; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=3600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss, done.stdout


def line(what: str, walls: list[float], cpus: list[float], target: float | None) -> None:
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    verdict = "" if target is None else f"  target {target:g} s: {'PASS' if wall < target else 'MISS'} (wall)"
    print(f"{what}: {wall:.3f} s wall, {cpu:.3f} s CPU (median of {len(walls)}){verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat, a small run for memory")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replicates", type=int, default=1000, help="replicates of the peak-memory run")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    replicates = 20 if args.quick else args.replicates
    folder = Path.cwd()
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # first: the largest child so far is the one whose peak RUSAGE_CHILDREN reports
    wall, cpu, peak, _ = timed([*AFTERMATH, "run", "-n", str(replicates), "--json"], folder)
    print(f"aftermath run -n {replicates}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
          f"peak memory: {peak / 1024:.0f} MiB resident (target 600 MiB for -n 1000)")
    for what, argv, target in (
        ("aftermath --help", ["--help"], 0.5),
        ("aftermath scenarios", ["scenarios"], 1.0),
        ("aftermath run --engine deterministic (end to end, 200 runs)", ["run", "--engine", "deterministic"], 3.0),
    ):
        runs = [timed([*AFTERMATH, *argv], folder) for _ in range(repeat)]
        line(what, [r[0] for r in runs], [r[1] for r in runs], target)
    loads = [timed([sys.executable, "-c", LOAD], folder)[3].split() for _ in range(repeat)]
    first_wall, first_cpu = [float(x[0]) for x in loads], [float(x[1]) for x in loads]
    again_wall, again_cpu = [float(x[2]) for x in loads], [float(x[3]) for x in loads]
    line("load_scenario(default), first in a process", first_wall, first_cpu, 0.3)
    line("load_scenario(default), again", again_wall, again_cpu, 0.3)


if __name__ == "__main__":
    main()

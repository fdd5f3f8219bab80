"""Benchmark the run store: how compactly an ensemble's outcome series are stored, and how much is
written to disk to store them.

An ensemble of the default scenario (samples x stochastic replicates, baseline only, one worker so
every write is this process's) is run into a fresh store, three times. Printed, medians of the three:
- bytes per replicate-month: the store file's size after the run / (members x arms x months);
- bytes per stored number: the same size / the numbers the series hold;
- series blocks (schema 3 on): the encoded series alone per replicate-month, all of them, the
  scenario's own outcomes, and the sub-model outputs (a small store's file is mostly DuckDB's fixed
  256 KiB blocks: one or more per table);
- written / final: bytes this process wrote to disk during the run (/proc/self/io write_bytes, so the
  write-ahead log and every checkpoint count) / the store file's final size;
- seconds: the run's wall-clock time, simulation included.

    .venv/bin/python benchmarks/bench_store.py                # 10 x 5, the sizes the issue quotes
    .venv/bin/python benchmarks/bench_store.py --quick        # smoke run: 2 x 2, one repeat
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from aftermath.experiments import design_experiment, read_scenario, run_stored
from aftermath.experiments.design import layout_of
from aftermath.store import Store


def written_bytes() -> int:
    """Bytes this process has caused to be written to storage (Linux /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes line")


def measure(samples: int, replicates: int, seed: int) -> dict[str, float]:
    text, file, scenario = read_scenario(None)
    experiment = design_experiment(text, file, samples=samples, replicates=replicates, seed=seed)
    layout = layout_of(experiment)
    months = len(layout.times)
    numbers_per_member = sum(
        months * math.prod(len(labels) for _, labels in strata) for strata in layout.series.values()
    )
    replicate_months = experiment.members * len(experiment.arms) * months
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        before = written_bytes()
        started = time.perf_counter()
        run_stored(Store(path), experiment, "ensemble")
        seconds = time.perf_counter() - started
        written = written_bytes() - before
        size = path.stat().st_size
        figures = {
            "bytes per replicate-month": size / replicate_months,
            "bytes per stored number": size / (experiment.members * len(experiment.arms) * numbers_per_member),
        }
        with duckdb.connect(str(path), read_only=True) as db:
            columns = {row[0] for row in db.execute("DESCRIBE series").fetchall()}
            if "data" in columns:  # schema 3: the encoded blocks alone, without DuckDB's fixed blocks
                blocks, own = db.execute(
                    "SELECT sum(octet_length(data)), sum(octet_length(data)) FILTER (list_contains(?, outcome)) "
                    "FROM series", [list(scenario.outcomes)]).fetchone()
                figures["series blocks, B/replicate-month"] = blocks / replicate_months
                figures["  the scenario's outcomes"] = own / replicate_months
                figures["  the sub-model outputs"] = (blocks - own) / replicate_months
    return {**figures, "written / final": written / size, "store MB": size / 1e6, "written MB": written / 1e6,
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 x 2, one repeat (a smoke run)")
    options = parser.parse_args()
    if options.quick:
        options.samples, options.replicates, options.repeats = 2, 2, 1
    runs = [measure(options.samples, options.replicates, seed) for seed in range(1, options.repeats + 1)]
    print(f"default scenario, ensemble of {options.samples} samples x {options.replicates} replicates, "
          f"one worker; medians of {options.repeats} runs (seeds 1..{options.repeats})")
    for key in runs[0]:
        values = [run[key] for run in runs]
        print(f"  {key:<34} {statistics.median(values):10.3f}   (runs: {', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()

"""The engine benchmark still runs and prints every figure it promises (a smoke run, not a timing)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_engines.py"
NUMBER = r"([\d,]+(?:\.\d+)?)"
FIGURES = {
    "stochastic replicate-months/s": rf"stochastic, [\d,]+ replicates: {NUMBER} replicate-months/s",
    "peak memory": rf"peak memory: {NUMBER} MiB resident",
    "deterministic runs/s": rf"deterministic, batch of [\d,]+ parameter samples .*: {NUMBER} runs/s",
    "sub-step cost": rf"each extra sub-step costs {NUMBER} us per run-month",
    "ode runs/s": rf"ode \(\w+, .*: {NUMBER} runs/s",
    "numpy loop runs/s": rf"numpy loop \(hand-written, .*\), same batch: {NUMBER} runs/s",
    "numpy binomial draws/s": rf"numpy binomial ceiling: {NUMBER} draws/s",
    "engine binomial-equivalent draws/s": rf"engine: {NUMBER} binomial-equivalent draws/s",
    "Mesa replicate-months/s": rf"Mesa [\d.]+, one agent per person: {NUMBER} replicate-months/s",
    "ratio to Mesa": rf"ratio aftermath/Mesa: {NUMBER}x",
    "kernel share of the profile": rf"numba kernel advance\(\)\s+{NUMBER} ms",
    "rate-expression share of the profile": rf"rate expressions \(_fill_rates\)\s+{NUMBER} ms",
}


@pytest.mark.slow
def test_quick_benchmark_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--profile"],
        capture_output=True, text=True, timeout=180, cwd=SCRIPT.parents[1],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for figure, pattern in FIGURES.items():
        values = [float(v.replace(",", "")) for v in re.findall(pattern, out)]
        assert values, f"the benchmark no longer prints {figure}:\n{out}"
        assert all(v > 0 for v in values), f"{figure} is not positive:\n{out}"
    assert len(re.findall(FIGURES["stochastic replicate-months/s"], out)) == 2, out
    assert "Mesa model agrees with aftermath" in out, out
    difference = re.search(r"largest difference of the final counts ([\d.e+-]+) \(relative\)", out)
    assert difference and float(difference.group(1)) < 1e-9, out  # the numpy loop is the same model
    verdicts = re.findall(r"^  (PASS|MISS) ", out, flags=re.MULTILINE)
    assert len(verdicts) == 4, out


@pytest.mark.slow
def test_quick_speed_benchmark_prints_the_four_figures() -> None:
    script = SCRIPT.parent / "bench_speed.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300, cwd=SCRIPT.parents[1],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    units = ("runs per CPU-second", "replicate-months per CPU-second", "CPU ms (target", "CPU ms per parameter set")
    for unit in units:
        values = re.findall(rf"{NUMBER} {re.escape(unit)}", done.stdout)
        assert len(values) == 1 and float(values[0].replace(",", "")) > 0, done.stdout

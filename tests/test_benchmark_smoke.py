"""The benchmarks still run and print every figure they promise (smoke runs, not timings)."""

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
    "kernel share of the profile": rf"numba kernels \(advance, advance_span, expected_span\)\s+{NUMBER} ms",
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


CLI_SCRIPT = SCRIPT.with_name("bench_cli.py")
CLI_FIGURES = (
    r"aftermath --help: {n} s wall, {n} s CPU",
    r"aftermath scenarios: {n} s wall, {n} s CPU",
    r"aftermath run --engine deterministic \(end to end, 200 runs\): {n} s wall, {n} s CPU",
    r"load_scenario\(default\), first in a process: {n} s wall, {n} s CPU",
    r"load_scenario\(default\), again: {n} s wall, {n} s CPU",
    r"aftermath run -n 20: {n} s wall, {n} s CPU, peak memory: {n} MiB resident",
)


@pytest.mark.slow
def test_quick_cli_benchmark_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(CLI_SCRIPT), "--quick"], capture_output=True, text=True, timeout=600,
        cwd=SCRIPT.parents[1],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for pattern in CLI_FIGURES:
        found = re.search(pattern.format(n=NUMBER), done.stdout)
        assert found, f"the CLI benchmark no longer prints {pattern}:\n{done.stdout}"
        assert all(float(v.replace(",", "")) > 0 for v in found.groups()), done.stdout


@pytest.mark.slow
def test_quick_store_benchmark_prints_its_figures() -> None:
    script = SCRIPT.with_name("bench_store.py")
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300,
                          cwd=SCRIPT.parents[1])
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in ("bytes per replicate-month", "series blocks, B/replicate-month", "the scenario's outcomes",
                   "written / final"):
        found = re.search(rf"{re.escape(figure)}\s+{NUMBER}", done.stdout)
        assert found and float(found.group(1).replace(",", "")) > 0, f"no {figure}:\n{done.stdout}"


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

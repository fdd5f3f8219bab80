"""A policy search recorded in the run store: what it stores, discovery on it, Ctrl-C at any point."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aftermath.decisions import classify, discover, optimise, parse_objective, parse_target, stored_cases
from aftermath.experiments import read_scenario, resume
from aftermath.store import Store, StoreError, database
from tests.conftest import ROOT
from tests.test_decisions import TWO_LEVERS

optimise_module = importlib.import_module("aftermath.decisions.optimise")  # the package's `optimise` is the function
OBJECTIVE = "remaining@2024-12"
SAMPLES = 10


def _search(store: Store | None, **extra):
    text, file, _ = read_scenario(TWO_LEVERS)
    return optimise(text, file, [parse_objective(OBJECTIVE)], budget=1.0, evaluations=32, population=8,
                    samples=SAMPLES, seed=1, store=store, **extra)


def test_a_stored_search_holds_what_the_optimiser_saw_and_discovery_finds_the_lever_region(tmp_path: Path) -> None:
    """Every evaluated policy is an arm ('policy i', its lever strengths) over the common samples; the stored
    series give back exactly the optimiser's numbers; PRIM on the pooled cases finds where the stock left is
    low: a strong lever_b (it triples the exit hazard) and a high exit hazard (two_levers.yaml)."""
    store = Store(tmp_path / "runs.duckdb")
    told: list[int] = []
    result = _search(store, started=told.append)
    assert result.run_id == 1 and told == [1]
    run = store.run(result.run_id)
    assert run.row["kind"] == "optimise" and run.row["status"] == "done"
    assert run.labels == [f"policy {i}" for i in range(result.evaluations)]
    strengths = result.evaluated[["lever_a", "lever_b"]].to_numpy()
    assert [[arm["lever_a"], arm["lever_b"]] for _, arm in run.arms] == strengths.tolist()
    assert run.metadata["search"]["objectives"] == [OBJECTIVE]
    assert store.runs()["policies"].iloc[0].startswith("policy 0, policy 1, ")

    target = parse_target(OBJECTIVE)
    cases = stored_cases(store, result.run_id, [target])  # an optimise run pools its arms by default
    assert cases.values.shape == (result.evaluations * SAMPLES, 1)
    assert np.array_equal(cases.values[:, 0].reshape(result.evaluations, SAMPLES), result.values[:, :, 0])
    assert np.array_equal(cases.inputs["lever_b (strength)"], np.repeat(strengths[:, 1], SAMPLES))
    in_memory = _search(None)
    assert in_memory.run_id is None and np.array_equal(in_memory.values, result.values)

    values = cases.values[:, 0]
    found = discover(cases.inputs, classify(values, below=float(np.quantile(values, 0.2))), min_density=0.9)
    limits = found.chosen.limits.set_index("parameter")
    assert found.chosen.density >= 0.9
    assert limits.loc["exit_hazard", "low"] is not None and limits.loc["exit_hazard", "high"] is None
    assert limits.loc["lever_b (strength)", "low"] is not None
    assert "unused_share" not in limits.index or limits.loc["unused_share", "qp_low"] > 0.01
    with pytest.raises(StoreError, match="cannot be resumed: it is a policy search"):
        resume(store, result.run_id)


def test_ctrl_c_keeps_whole_generations_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the third batch runs: the run keeps the baseline and the first generation whole, reads
    'interrupted'; Ctrl-C inside the transaction that adds a generation adds none of it."""
    store = Store(tmp_path / "runs.duckdb")
    real = optimise_module.evaluate_targets
    calls = []

    def interrupted_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(optimise_module, "evaluate_targets", interrupted_third)
    with pytest.raises(KeyboardInterrupt):
        _search(store)
    run = store.run(1)
    assert run.row["status"] == "interrupted" and "after 9 policies" in run.row["message"]
    assert len(run.labels) == 9  # the baseline and one population of 8
    cases = stored_cases(store, 1, [parse_target(OBJECTIVE)])
    assert cases.values.shape == (9 * SAMPLES, 1) and np.isfinite(cases.values).all()

    monkeypatch.setattr(optimise_module, "evaluate_targets", real)
    opened = database.Store._open

    class Interrupting:
        """A connection on which adding a generation's arms meets Ctrl-C just before its commit."""

        def __init__(self, connection) -> None:
            self._connection = connection

        def __getattr__(self, name: str):
            return getattr(self._connection, name)

        def execute(self, query: str, *args, **kwargs):
            if query.startswith("UPDATE runs SET policies"):
                raise RuntimeError(database.INTERRUPTED)  # what DuckDB raises when Ctrl-C arrives mid-statement
            return self._connection.execute(query, *args, **kwargs)

    monkeypatch.setattr(database.Store, "_open", lambda self, write: Interrupting(opened(self, write)))
    with pytest.raises(KeyboardInterrupt):
        _search(store)
    run = store.run(2)
    assert run.row["status"] == "interrupted" and run.labels == ["policy 0"]
    assert stored_cases(store, 2, [parse_target(OBJECTIVE)]).values.shape == (SAMPLES, 1)


CHILD = """
import importlib
import sys

search = importlib.import_module("aftermath.decisions.optimise")
real, calls = search.evaluate_targets, []


def interrupted_third(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        raise KeyboardInterrupt
    return real(*args, **kwargs)


search.evaluate_targets = interrupted_third
sys.argv = ["aftermath", *sys.argv[1:]]
from aftermath.cli import main
main()
"""


@pytest.mark.slow
def test_the_cli_stores_the_search_and_ctrl_c_exits_130_naming_the_run(tmp_path: Path) -> None:
    store = str(tmp_path / "runs.duckdb")
    args = ["optimise", str(TWO_LEVERS), "--minimise", OBJECTIVE, "--budget", "1", "--evaluations", "16",
            "--population", "8", "-s", "6", "--workers", "1", "--store", store]
    stopped = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=ROOT,
                             timeout=300)
    assert stopped.returncode == 130, stopped.stderr
    assert "interrupted: run 1 keeps the policies evaluated so far" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    done = subprocess.run([sys.executable, "-m", "aftermath", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "stored as run 2" in done.stdout
    listed = subprocess.run([sys.executable, "-m", "aftermath", "runs", "--store", store], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert "optimise" in listed.stdout and "interrupted" in listed.stdout
    found = subprocess.run([sys.executable, "-m", "aftermath", "discover", "2", "--store", store, "--outcome",
                            "remaining", "--date", "2024-12", "--quantile", "0.7"], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)
    assert found.returncode == 0, found.stderr
    assert "cases (arm x sample) of run 2" in found.stdout and "(strength)" in found.stdout

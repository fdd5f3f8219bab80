"""The experiments commands: compare, show, runs, resume and ensemble --split, and their errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

POLICY = "border_and_intelligence"


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> tuple[Path, dict]:
    store = tmp_path_factory.mktemp("cli") / "runs.duckdb"
    done = run_cli("compare", "competing_exits", "--policy", POLICY, "--policy", f"{POLICY}=0.5", "-s", "6", "-n",
                   "4", "--workers", "1", "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    return store, json.loads(done.stdout)


def test_compare_prints_levels_and_paired_differences_and_stores_the_run(compared) -> None:
    store, payload = compared
    assert (payload["run_id"], payload["status"], payload["stored"], payload["members"]) == (1, "done", 24, 24)
    assert payload["arms"] == {"baseline": {}, POLICY: {POLICY: 1.0}, f"{POLICY}=0.5": {POLICY: 0.5}}
    rows = [r for r in payload["bands"] if r["outcome"] == "returned_total" and r["date"] == "2018-12"]
    kinds = {(r["arm"], r["measure"]) for r in rows}
    assert kinds == {("baseline", "level"), (POLICY, "level"), (f"{POLICY}=0.5", "level"),
                     (POLICY, "difference"), (f"{POLICY}=0.5", "difference")}
    effect = next(r for r in rows if r["arm"] == POLICY and r["measure"] == "difference")
    half = next(r for r in rows if r["arm"] == f"{POLICY}=0.5" and r["measure"] == "difference")
    assert effect["high"] < half["high"] < 0, "stopping returnees lowers returns, more so at full strength"
    shown = run_cli("show", "1", "--store", str(store), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["bands"] == payload["bands"]


def test_show_and_runs_print_tables(compared) -> None:
    store, _ = compared
    table = run_cli("show", "1", "--store", str(store))
    assert table.returncode == 0, table.stderr
    assert "difference" in table.stdout and "returned_total" in table.stdout and "2018-12" in table.stdout
    listed = run_cli("runs", "--store", str(store), "--json")
    assert listed.returncode == 0
    assert [(r["run_id"], r["kind"], r["status"]) for r in json.loads(listed.stdout)] == [(1, "compare", "done")]
    again = run_cli("resume", "1", "--store", str(store), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["stored"] == 24


def test_ensemble_splits_the_spread(tmp_path: Path) -> None:
    done = run_cli("ensemble", "competing_exits", "-s", "5", "-n", "4", "--sampler", "mc", "--workers", "1",
                   "--store", str(tmp_path / "runs.duckdb"), "--split")
    assert done.returncode == 0, done.stderr
    assert "parametric share" in done.stdout and "(mc)" in done.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["compare", "competing_exits"], "at least one --policy"),
        (["compare", "competing_exits", "--policy", "nonsense"], "unknown policy 'nonsense'"),
        (["ensemble", "competing_exits", "--sampler", "sobol"], "--sampler 'sobol'"),
        (["ensemble", "competing_exits", "--dask", "elsewhere"], "expected 'local' or a scheduler address"),
        (["resume", "3"], "no run 3"),
    ],
)
def test_bad_requests_get_one_line_and_exit_2(compared, arguments: list[str], message: str) -> None:
    done = run_cli(*arguments, "--store", str(compared[0]))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr

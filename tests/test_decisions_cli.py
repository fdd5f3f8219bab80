"""The decision commands end to end on a synthetic scenario: stored ensembles, refusals, the report sections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_decisions import TWO_LEVERS

SCENARIO = str(TWO_LEVERS)


def _refused(result, *phrases: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def test_too_small_samples_are_refused_before_running() -> None:
    _refused(run_cli("sensitivity", SCENARIO, "--method", "sobol", "-s", "16"), "at least 64 base samples")
    _refused(run_cli("ensemble", SCENARIO, "-s", "24", "--sensitivity", "--store", "/nonexistent/x.duckdb"),
             "--sensitivity", "at least 200")
    _refused(run_cli("optimise", SCENARIO, "--minimise", "remaining@2024-12", "--metric", "satisficing"),
             "threshold")
    _refused(run_cli("optimise", "competing_exits", "--minimise", "returned_total@2018-12"), "'cost'")


@pytest.mark.slow
def test_sensitivity_discovery_search_and_their_report_sections(tmp_path: Path) -> None:
    store = str(tmp_path / "runs.duckdb")
    saved = {name: tmp_path / f"{name}.json" for name in ("sensitivity", "discovery", "optimisation", "features")}

    result = run_cli("sensitivity", SCENARIO, "--method", "sobol", "-s", "64", "--outcome", "remaining",
                     "--date", "2022-12", "--date", "2024-12", "--workers", "1", "--store", store,
                     "--save", str(saved["sensitivity"]))
    assert result.returncode == 0, result.stderr
    assert "exit_hazard" in result.stdout
    payload = json.loads(saved["sensitivity"].read_text())
    unused = [r for r in payload["indices"] if r["parameter"] == "unused_share"]
    assert unused and not any(r["significant"] for r in unused)
    result = run_cli("sensitivity", "--from-run", str(payload["run_id"]), "--outcome", "remaining", "--date",
                     "2024-12", "--store", store, "--json")
    assert result.returncode == 0, result.stderr
    again = json.loads(result.stdout)
    assert again["runs"] == payload["runs"] and again["indices"] == [r for r in payload["indices"]
                                                                      if r["date"] == "2024-12"]

    result = run_cli("ensemble", SCENARIO, "-s", "100", "--engine", "deterministic", "--workers", "1",
                     "--store", store, "--json")
    assert result.returncode == 0, result.stderr
    run_id = str(json.loads(result.stdout)["run_id"])
    result = run_cli("discover", run_id, "--outcome", "remaining", "--date", "2024-12", "--quantile", "0.8",
                     "--store", store, "--json", "--save", str(saved["discovery"]))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["of_interest"] == 20
    restricted = {r["parameter"]: r for r in found["chosen"]["limits"]}
    assert restricted["exit_hazard"]["high"] is not None, "a high stock left means a low exit hazard"
    assert "unused_share" not in restricted or restricted["unused_share"]["qp_low"] != 0
    result = run_cli("feature-scores", run_id, "--outcome", "remaining", "--date", "2024-12", "--store", store,
                     "--save", str(saved["features"]))
    assert result.returncode == 0, result.stderr
    assert "exit_hazard" in result.stdout

    result = run_cli("optimise", SCENARIO, "--minimise", "remaining@2024-12", "--minimise", "left@2021-12",
                     "--budget", "1", "--evaluations", "24", "--population", "8", "-s", "2", "--workers", "1",
                     "--store", store, "--save", str(saved["optimisation"]))
    assert result.returncode == 0, result.stderr
    assert "aftermath compare" in result.stdout
    search = json.loads(saved["optimisation"].read_text())
    assert search["pareto"] and all(row["cost"] <= 1.0 + 1e-9 for row in search["pareto"])

    page = tmp_path / "report.html"
    result = run_cli("report", SCENARIO, "-s", "4", "-n", "2", "--map-runs", "2", "-o", str(page),
                     *[arg for path in saved.values() for arg in ("--with", str(path))])
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    assert "Decisions under uncertainty" in text
    for heading in ("Which uncertainties matter (sobol)", "When remaining &gt;", "Robust policies within a budget",
                    "Feature scores"):
        assert heading in text, heading
    assert text.count("<svg") >= 3
    _refused(run_cli("report", SCENARIO, "-o", str(page), "--with", str(tmp_path / "missing.json")),
             "--with", "missing.json")

"""The command line as a user meets it: exit codes, tables, JSON, output files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.conftest import run_cli


def test_run_prints_bands_at_key_dates():
    result = run_cli("run", "competing_exits", "-n", "50")
    assert result.returncode == 0, result.stderr
    assert "returned_total" in result.stdout
    assert "2018-12" in result.stdout


def test_run_json_is_machine_readable_and_reproducible(tmp_path):
    out = tmp_path / "runs.nc"
    first = run_cli("run", "competing_exits", "-n", "30", "--seed", "4", "--json", "--out", str(out))
    second = run_cli("run", "competing_exits", "-n", "30", "--seed", "4", "--json")
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    assert payload == json.loads(second.stdout)
    rows = [r for r in payload["bands"] if r["outcome"] == "returned_total" and r["date"] == "2018-12"]
    assert len(rows) == 1 and rows[0]["low"] < rows[0]["median"] < rows[0]["high"]
    # every band printed is numpy's 5%, 50% and 95% quantile of the 30 replicates saved with --out
    with xr.open_dataset(out) as saved:
        for row in payload["bands"]:
            if set(row) - {"outcome", "date", "low", "median", "high"}:
                continue  # a stratified outcome (its stratum columns); the totals are enough here
            raw = saved[row["outcome"]].sel(time=np.datetime64(row["date"], "M")).values
            expected = np.quantile(raw, [0.05, 0.5, 0.95])
            assert [row["low"], row["median"], row["high"]] == pytest.approx(list(expected)), row


def test_run_set_and_policy_change_the_numbers():
    base = json.loads(run_cli("run", "competing_exits", "-n", "20", "--json").stdout)
    more = json.loads(run_cli("run", "competing_exits", "-n", "20", "--json", "--set", "return_hazard=0.4").stdout)
    policy = json.loads(
        run_cli("run", "competing_exits", "-n", "20", "--json", "--policy", "border_and_intelligence=0.8").stdout
    )

    def final(payload, outcome):
        return next(r["median"] for r in payload["bands"] if r["outcome"] == outcome and r["date"] == "2018-12")

    assert final(more, "returned_total") > final(base, "returned_total")
    assert final(policy, "returned_total") < final(base, "returned_total")
    assert policy["policies"] == {"border_and_intelligence": 0.8}


def test_out_writes_netcdf_and_parquet(tmp_path):
    nc, parquet = tmp_path / "r.nc", tmp_path / "r.parquet"
    assert run_cli("run", "competing_exits", "-n", "5", "--out", str(nc), "--compartments").returncode == 0
    assert run_cli("run", "competing_exits", "-n", "5", "--out", str(parquet), "--compartments").returncode == 0
    dataset = xr.load_dataset(nc)
    assert dataset["in_theatre"].dims == ("replicate", "time", "origin", "cohort")
    table = pd.read_parquet(parquet)
    assert set(table["variable"]) >= {"in_theatre", "returned_total"}
    in_nc = dataset["returned_total"].sel(replicate=0).values
    in_parquet = table[(table.variable == "returned_total") & (table.replicate == 0)].sort_values("time")["value"]
    np.testing.assert_array_equal(in_nc, in_parquet.values)
    assert not list(tmp_path.glob(".*partial"))


def test_deterministic_engine_runs_once_with_fixed_parameters_and_per_draw_without():
    fixed = json.loads(run_cli("run", "competing_exits", "--engine", "deterministic", "--fixed-parameters",
                               "--json").stdout)
    assert fixed["replicates"] == 1
    drawn = json.loads(run_cli("run", "competing_exits", "--engine", "deterministic", "-n", "40", "--json").stdout)
    assert drawn["replicates"] == 40 and drawn["parameter_uncertainty"]
    final = next(r for r in drawn["bands"] if r["outcome"] == "killed_total" and r["date"] == "2018-12")
    assert final["low"] < final["median"] < final["high"]


def test_parameter_uncertainty_widens_the_bands():
    def width(*extra: str) -> float:
        payload = json.loads(run_cli("run", "competing_exits", "-n", "150", "--json", *extra).stdout)
        row = next(r for r in payload["bands"] if r["outcome"] == "killed_total" and r["date"] == "2018-12")
        return row["high"] - row["low"]

    # The 5-95% width of 150 runs has a normal-theory standard error of 7.4% of itself (quantile SE
    # sqrt(0.05 * 0.95 / 150) / phi(1.645) = 0.17 sd at each end), so the ratio of two widths has about 10.5%:
    # at the measured ratio 2.84 (seeds 1 and 2: 2.82, 2.86) the bound 1.3 is 5.1 SE below it (false-failure
    # chance 2e-7). The seed is fixed (the CLI's default).
    assert width() > 1.3 * width("--fixed-parameters")


def test_bad_options_exit_2_with_one_line(tmp_path):
    cases = [
        ("run", "competing_exits", "--set", "nope=1"),
        ("run", "competing_exits", "--set", "death_hazard"),
        ("run", "competing_exits", "--policy", "nope"),
        ("run", "competing_exits", "--engine", "quantum"),
        ("run", "competing_exits", "--out", str(tmp_path / "x.csv")),
        ("run", "competing_exits", "--out", str(tmp_path / "missing" / "x.nc")),
        ("run", "no/such/file.yaml"),
        ("check", str(tmp_path)),
    ]
    for args in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout
    assert not list(tmp_path.iterdir())


def test_check_scenarios_and_explain():
    check = run_cli("check", "competing_exits")
    assert check.returncode == 0 and check.stdout.startswith("ok: ")
    listing = run_cli("scenarios")
    assert "competing_exits" in listing.stdout
    explain = run_cli("explain", "competing_exits")
    assert explain.returncode == 0
    for text in ("death_hazard", "per year", "E05", "Counter-Terrorism Coordinator", "returning"):
        assert text in explain.stdout, text

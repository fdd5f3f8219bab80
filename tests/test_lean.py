"""Memory: what `run` shows, reduced block by block, equals what the whole ensemble gives."""

from __future__ import annotations

import pandas as pd
import pytest
import xarray as xr

from aftermath import compile_model, draw_parameters, load_scenario, simulate, summary
from aftermath.cli.core import _shown_in_blocks
from aftermath.engines.ode import OdeOptions
from aftermath.homefront.summary import home_front_table, home_front_years
from aftermath.inference.observation import needs_series, predictive
from aftermath.scenario.loader import parse_scenario
from aftermath.summary import banded_runs, bands, key_dates, recorded_numbers
from tests.test_homefront import small_scenario

# Three more observations, so that the predictive draws replay one stream over negative binomial (whose
# draws depend on every value), normal and lognormal errors.
OBSERVED = """
  - {outcome: killed_total, date: 2015-06, value: 300, source: E04,
     error: {distribution: negative_binomial, dispersion: 10, range: [5, 20], assumption: test}}
  - {outcome: in_theatre_total, date: 2015-12, value: 2000, source: E04,
     error: {distribution: normal, cv: 0.2, range: [0.1, 0.4], assumption: test}}
  - {outcome: returns_per_month, date: 2016-06, value: 30, source: E04}
"""


def _five_a_block(monkeypatch, model) -> None:
    monkeypatch.setattr(summary, "BLOCK_BYTES", 5 * 8 * (model.steps + 1) * recorded_numbers(model))


@pytest.mark.parametrize("engine", ["stochastic", "deterministic"])
def test_bands_by_block_equal_the_bands_of_the_whole_run(monkeypatch, engine):
    scenario = load_scenario("competing_exits")
    model = compile_model(scenario)
    draws = draw_parameters(scenario, 23, seed=4)
    dates = key_dates(scenario)
    whole = bands(simulate(model, 23, seed=4, engine=engine, parameters=draws, keep_compartments=False), dates)
    _five_a_block(monkeypatch, model)
    advanced: list[int] = []
    blocked = banded_runs(model, dates, 23, seed=4, engine=engine, parameters=draws, progress=advanced.append)
    assert len(advanced) > 3 and sum(advanced) == 23
    pd.testing.assert_frame_equal(blocked, whole)


@pytest.mark.parametrize("engine", ["stochastic", "deterministic", "ode"])
def test_what_run_shows_by_block_equals_the_whole_run(monkeypatch, engine):
    """Latent bands, the home front's yearly bands and the predictive draws at the key dates."""
    text = small_scenario().replace("\nobservations:\n", "\nobservations:\n" + OBSERVED.lstrip("\n"), 1)
    scenario = parse_scenario(text, "small.yaml")
    assert needs_series(scenario) == ["killed_total"]
    model = compile_model(scenario)
    draws = draw_parameters(scenario, 23, seed=4)
    options = {"engine": engine, "parameters": draws, "ode": OdeOptions()}
    dataset = simulate(model, 23, seed=4, keep_compartments=False, **options)
    dates = key_dates(scenario)
    _five_a_block(monkeypatch, model)
    advanced: list[int] = []
    table, home, reported = _shown_in_blocks(scenario, model, 23, advanced.append, seed=4, **options)
    assert sum(advanced) == 23 and (len(advanced) > 3 or engine == "ode")
    pd.testing.assert_frame_equal(table, bands(dataset, dates))
    spec = scenario.home_front  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(home, home_front_table(dataset, spec, home_front_years(scenario, spec)))
    whole = predictive(scenario, dataset, seed=4)
    assert list(reported.data_vars) == list(whole.data_vars)
    assert set(whole.data_vars) == {"returned_total", "killed_total", "in_theatre_total", "returns_per_month"}
    xr.testing.assert_identical(reported, whole.sel(time=reported["time"]))
    pd.testing.assert_frame_equal(bands(reported, dates), bands(whole, dates))


def test_the_predictive_replay_refuses_a_negative_binomial_without_its_series():
    text = small_scenario().replace("\nobservations:\n", "\nobservations:\n" + OBSERVED.lstrip("\n"), 1)
    scenario = parse_scenario(text, "small.yaml")
    model = compile_model(scenario)
    dataset = simulate(model, 3, seed=1, keep_compartments=False)
    kept = summary.at_dates(dataset, key_dates(scenario))
    with pytest.raises(ValueError, match=r"killed_total.*every time"):
        predictive(scenario, kept, seed=1, grid=summary.time_grid(model))


def test_bands_by_block_refuse_a_date_off_the_grid():
    model = compile_model(load_scenario("competing_exits"))
    with pytest.raises(ValueError, match="not a step of this run"):
        banded_runs(model, ["2031-01"], 3, seed=1)


def test_blocks_are_sized_by_everything_a_run_records():
    model = compile_model(parse_scenario(small_scenario(), "small.yaml"))
    dataset = simulate(model, 2, seed=1, keep_compartments=False)
    assert recorded_numbers(model) * (model.steps + 1) * 2 * 8 == sum(v.nbytes for v in dataset.data_vars.values())

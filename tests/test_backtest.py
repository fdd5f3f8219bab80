"""Backtests: calibrate up to each cutoff, forecast the later observations, score them and the baselines."""

from __future__ import annotations

import json

import pytest

from aftermath.inference.backtest import backtest, targets_after
from aftermath.report.decisions import decision_figure, decision_section
from aftermath.scoring import summarise
from tests.calibration_helpers import synthetic_scenario
from tests.conftest import run_cli

LATE = "  - {outcome: killed_total, date: 2019-06, value: 99999, source: synthetic}"


def test_targets_are_the_observations_after_the_cutoff_and_up_to_until() -> None:
    text, _ = synthetic_scenario(1)
    _, scenario = synthetic_scenario(1, text.split("observations:\n")[1] + LATE)
    chosen = targets_after(scenario, "2016-12", "2018-01")
    assert sorted(set(chosen.dates)) == ["2017-01", "2017-07", "2018-01"]
    assert 99999 not in chosen.values


def test_a_backtest_scores_the_posterior_and_both_baselines() -> None:
    _, scenario = synthetic_scenario(2)
    result = backtest(scenario, ["2015-12", "2016-12"], until="2018-01", runs=60, seed=3, method="prior",
                      engine="deterministic", calibration={"steps": 300})
    assert [f.cutoff for f in result.folds] == ["2015-12", "2016-12"]
    first, second = result.folds
    assert first.summaries["posterior"].scored == 10 and second.summaries["posterior"].scored == 6
    assert first.summaries["persistence"].scored == 10  # both outcomes were observed before 2015-12
    assert result.pooled["prior"].scored == 16
    persistence = [s for s in first.scores if s.forecast == "persistence" and s.target.outcome == "killed_total"]
    assert all(abs(s.median / persistence[0].median - 1) < 0.2 for s in persistence)  # the same last value
    assert result.pooled["posterior"].crps < result.pooled["persistence"].crps
    payload = json.loads(json.dumps(result.as_payload()))
    assert payload["kind"] == "backtest" and len(payload["folds"][0]["scores"]) == 30
    section = decision_section(payload)
    assert section.head[4] == "90% coverage" and len(section.rows) == 9 and section.rows[-1][0] == "all"
    assert decision_figure(section) is not None


def test_bad_cutoffs_are_refused() -> None:
    _, scenario = synthetic_scenario(2)
    with pytest.raises(ValueError, match="ascending"):
        backtest(scenario, ["2016-12", "2015-12"], until="2018-01")
    with pytest.raises(ValueError, match="ascending"):
        backtest(scenario, ["2018-06"], until="2018-01")


@pytest.mark.slow
def test_the_backtests_coverage_of_fresh_synthetic_data_is_nominal() -> None:
    """Observations drawn from the observation model around known parameters: the posterior forecasts'
    90% and 50% intervals cover the later observations at their nominal rates, within sampling error
    (binomial, 95%), over three synthetic data sets and three cutoffs (90 targets)."""
    scores = []
    for seed in (11, 12, 13):
        _, scenario = synthetic_scenario(seed)
        result = backtest(scenario, ["2014-12", "2015-12", "2016-12"], until="2018-01", runs=100, seed=seed,
                          engine="deterministic", calibration={"steps": 100})
        scores += [s for fold in result.folds for s in fold.scores]
    posterior = summarise(scores, "posterior")
    assert posterior.scored == 90
    assert posterior.coverage["90%"].within_sampling_error, posterior.coverage["90%"]
    assert posterior.coverage["50%"].within_sampling_error, posterior.coverage["50%"]
    assert not summarise(scores, "persistence").coverage["90%"].within_sampling_error


@pytest.mark.slow
def test_the_backtest_command_prints_its_table_and_saves_its_scores(tmp_path) -> None:
    text, _ = synthetic_scenario(4)
    path = tmp_path / "synthetic.yaml"
    path.write_text(text, encoding="utf-8")
    saved = tmp_path / "backtest.json"
    result = run_cli("backtest", str(path), "--cutoffs", "2015-12,2016-12", "--until", "2018-01", "--method",
                     "prior", "--steps", "200", "-n", "40", "--engine", "deterministic", "--save", str(saved))
    assert result.returncode == 0, result.stderr
    assert "90% coverage" in result.stdout and "persistence" in result.stdout
    assert json.loads(saved.read_text())["kind"] == "backtest"
    bad = run_cli("backtest", str(path), "--cutoffs", "2016-12,2015-12", "--until", "2018-01")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "ascending" in bad.stderr

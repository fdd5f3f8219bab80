"""Backtests: calibrate up to each cutoff, forecast the later observations, score them and the baselines."""

from __future__ import annotations

import json
import math

import numpy as np
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
    # the same last value, with observation noise: over seeds 1-40 the largest deviation was 0.032 (sd 0.0146,
    # furthest 0.069), so 0.2 is 11 sd; the posterior's CRPS was 0.23 (sd 0.017) of persistence's, 46 sd below 1
    assert all(abs(s.median / persistence[0].median - 1) < 0.2 for s in persistence)
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
    90% and 50% intervals cover the later observations at their nominal rates over twelve synthetic data sets
    and three cutoffs (360 targets). Targets of one data set share its posterior, so their coverage varies
    more than a binomial's: over 60 data sets (seeds 11-70) the 30 targets of one held 26.7 (sd 2.24) in the
    90% interval and 14.6 (sd 3.56) in the 50% one, persistence 3.9 (sd 1.57) in its 90% one. Over twelve,
    the shares' sd are 0.0216 and 0.0343; 5 sd around the nominal rates leaves the measured means 4.6 and
    4.5 sd inside (2e-6 and 3e-6), and persistence's 0.13 is 24 sd below 0.5."""
    scores = []
    for seed in range(11, 23):
        _, scenario = synthetic_scenario(seed)
        result = backtest(scenario, ["2014-12", "2015-12", "2016-12"], until="2018-01", runs=100, seed=seed,
                          engine="deterministic", calibration={"steps": 100})
        scores += [s for fold in result.folds for s in fold.scores]
    posterior = summarise(scores, "posterior")
    assert posterior.scored == 360
    assert posterior.coverage["90%"].share >= 0.9 - 5 * 0.0216, posterior.coverage["90%"]
    assert posterior.coverage["50%"].share == pytest.approx(0.5, abs=5 * 0.0343), posterior.coverage["50%"]
    assert summarise(scores, "persistence").coverage["90%"].share < 0.5


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


def _with_schedules():
    from tests.conftest import scenario_from

    fixed = {"assumption": "test"}
    return scenario_from({
        "name": "scheduled", "title": "a hazard under two schedules",
        "time": {"start": "2015-01", "end": "2017-12"},
        "compartments": {"active": {"initial": 1000, **fixed}, "gone": {}},
        "parameters": {"leave": {"unit": "per month", "value": 0.02, "fixed": "test", **fixed}},
        "schedules": {
            "pressure": {"interpolation": "step", "points": {"2015-01": 1.0, "2016-01": 2.0, "2017-01": 0.5}, **fixed},
            "reach": {"interpolation": "linear", "points": {"2015-01": 0.0, "2017-01": 1.0}, **fixed},
        },
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave * pressure * (1 + reach)"}],
        "outcomes": {"gone_total": {"expr": "gone"}},
    })


def test_ex_ante_holds_every_schedule_at_its_value_at_the_cutoff() -> None:
    """By hand: at 2016-06 the step schedule is at its 2016-01 point (2.0); the linear one is 17 of its 24
    months from 0 to 1 (17/24). Before the cutoff the compiled series are the declared ones; after it, flat."""
    from aftermath import compile_model, simulate
    from aftermath.inference.backtest import held_at

    scenario = _with_schedules()
    held = held_at(scenario, "2016-06")
    assert held.schedules["pressure"].points == {"2015-01": 1.0, "2016-01": 2.0, "2016-06": 2.0}
    assert held.schedules["reach"].points == pytest.approx({"2015-01": 0.0, "2016-06": 17 / 24})
    before, after = compile_model(scenario), compile_model(held)
    cutoff = 17  # 2016-06, months after 2015-01
    for name, value in (("pressure", 2.0), ("reach", 17 / 24)):
        assert list(after.schedules[name][: cutoff + 1]) == list(before.schedules[name][: cutoff + 1])
        assert after.schedules[name][cutoff:] == pytest.approx([value] * (len(after.schedules[name]) - cutoff))
    runs = [simulate(compile_model(s), replicates=1, engine="deterministic")["gone_total"].values[0]
            for s in (scenario, held)]
    assert list(runs[0][: cutoff + 1]) == list(runs[1][: cutoff + 1]) and runs[0][-1] != runs[1][-1]


def test_without_schedules_ex_ante_and_ex_post_forecasts_are_the_same() -> None:
    _, scenario = synthetic_scenario(2)
    settings = {"until": "2018-01", "runs": 30, "seed": 3, "method": "prior", "engine": "deterministic",
                "calibration": {"steps": 100}}
    post, ante = backtest(scenario, ["2016-12"], **settings), backtest(scenario, ["2016-12"], ex_ante=True, **settings)
    assert [s.crps for s in post.folds[0].scores] == [s.crps for s in ante.folds[0].scores]
    assert ante.as_payload()["ex_ante"] is True and post.as_payload()["ex_ante"] is False
    section = decision_section(json.loads(json.dumps(ante.as_payload())))
    assert "ex ante: the schedules held at their values at each cutoff" in section.summary
    assert ante.as_payload()["folds"][0]["schedule_sigma"] == {}


def test_the_naive_forecasts_sigma_is_the_rms_of_the_monthly_log_changes_up_to_the_cutoff() -> None:
    """By hand, at 2016-06 (17 monthly changes since 2015-01): the step schedule doubles once (log 2); the
    linear one rises from 0 by 1/24 a month, its first change (from 0) left out: log((k + 1) / k), k = 1..16."""
    from aftermath.inference.backtest import naive_sigma
    from aftermath.scenario.schema import parse_month

    scenario = _with_schedules()
    start, month = parse_month("2015-01"), parse_month("2016-06")
    assert naive_sigma(scenario.schedules["pressure"], start, month) == pytest.approx(math.log(2) * math.sqrt(12 / 17))
    changes = [math.log((k + 1) / k) for k in range(1, 17)]
    assert naive_sigma(scenario.schedules["reach"], start, month) == pytest.approx(
        math.sqrt(sum(c * c for c in changes) / 16 * 12))
    schedule = scenario.schedules["pressure"]
    for points in ({"2015-01": 1.0, "2016-01": -0.5}, {"2015-01": 1.0, "2016-01": 0.0}, {"2015-01": 3.0},
                   {"2015-01": 0.0, "2016-01": 1.0}):
        # a shape with negative values, a level at 0 at the cutoff, a constant, an on/off switch
        assert naive_sigma(schedule.model_copy(update={"points": points}), start, month) is None


def test_ex_ante_forecasts_carry_the_naive_forecasts_random_walk_uncertainty() -> None:
    """With both errors at 1 the ex-ante scenario runs as the held one; each added error is lognormal with the
    schedule's sigma, its exponent the square root of the years since the cutoff; a fraction is capped at 1."""
    from aftermath import compile_model, simulate
    from aftermath.inference.backtest import HORIZON, ex_ante_scenario, held_at

    scenario = _with_schedules()
    ante, sigmas = ex_ante_scenario(scenario, "2016-06")
    assert set(sigmas) == {"pressure", "reach"}
    assert ante.flows[0].rate == ("leave * (pressure * pressure_forecast_error ** years_after_cutoff_sqrt) * "
                                  "(1 + reach * reach_forecast_error ** years_after_cutoff_sqrt)")
    horizon = compile_model(ante).schedules[HORIZON]
    assert list(horizon[:18]) == [0.0] * 18 and horizon[18 + 11] == pytest.approx(1.0)
    error = ante.parameters["pressure_forecast_error"].distribution
    assert (error.type, error.median, error.sigma) == ("lognormal", 1.0, sigmas["pressure"])

    def gone(s, **errors):
        return simulate(compile_model(s), replicates=1, engine="deterministic",
                        parameters={k: np.array([v]) for k, v in errors.items()})["gone_total"].values[0]

    held = held_at(scenario, "2016-06")
    assert list(gone(ante, pressure_forecast_error=1.0, reach_forecast_error=1.0)) == list(gone(held))
    doubled = gone(ante, pressure_forecast_error=4.0, reach_forecast_error=1.0)
    assert list(doubled[:19]) == list(gone(held)[:19]) and doubled[-1] > gone(held)[-1]
    # a fraction: min(reach x error^sqrt(h), 1); an error of 100 makes it 1 from the first month after the cutoff
    fraction = scenario.model_copy(update={"schedules": {
        **scenario.schedules, "reach": scenario.schedules["reach"].model_copy(update={"unit": "fraction"})}})
    capped, _ = ex_ante_scenario(fraction, "2016-06")
    assert "min(reach * reach_forecast_error ** years_after_cutoff_sqrt, 1)" in capped.flows[0].rate
    full = held_at(fraction, "2016-06")
    full = full.model_copy(update={"schedules": {**full.schedules, "reach": full.schedules["reach"].model_copy(
        update={"points": {**full.schedules["reach"].points, "2016-07": 1.0}})}})
    assert gone(capped, pressure_forecast_error=1.0, reach_forecast_error=100.0) == pytest.approx(gone(full))


def test_the_posterior_forecast_draws_what_the_posterior_lacks_from_its_prior() -> None:
    from scipy.stats import lognorm

    from aftermath.inference.backtest import ex_ante_scenario, forecast_parameters
    from aftermath.inference.calibration import Posterior
    from aftermath.scenario.schema import Distribution

    scenario = _with_schedules()
    ante, sigmas = ex_ante_scenario(scenario, "2016-06")
    ante = ante.model_copy(update={"parameters": {**ante.parameters, "leave": ante.parameters["leave"].model_copy(
        update={"fixed": None, "distribution": Distribution(type="uniform", low=0.01, high=0.03)})}})
    posterior = Posterior(names=("leave",), draws={"leave": np.array([0.015, 0.025])}, weights=np.array([0.5, 0.5]),
                          log_likelihood=np.zeros(2), method="prior", until="2016-06")
    drawn = forecast_parameters(ante, posterior, 400, seed=3)
    assert set(np.unique(drawn["leave"])) == {0.015, 0.025}
    # Latin hypercube: one draw in each 1/400 of the prior, so the quartiles are the prior's within a bin
    for name, sigma in sigmas.items():
        quartiles = np.quantile(drawn[f"{name}_forecast_error"], [0.25, 0.5, 0.75])
        assert quartiles == pytest.approx(lognorm(sigma).ppf([0.25, 0.5, 0.75]), rel=0.02)
    assert list(drawn["pressure_forecast_error"]) == list(forecast_parameters(ante, posterior, 400, seed=3)[
        "pressure_forecast_error"])


def test_the_table_and_the_report_give_each_cutoffs_schedule_sigmas() -> None:
    from aftermath.inference.backtest import schedule_sigma_text

    payload = {"folds": [{"cutoff": "2015-12", "schedule_sigma": {}},
                         {"cutoff": "2016-06", "schedule_sigma": {"pressure": 0.5824, "reach": 1.2}}]}
    assert schedule_sigma_text(payload).endswith("by cutoff: 2016-06: pressure 0.58, reach 1.20.")
    assert schedule_sigma_text({"folds": [{"cutoff": "2016-06"}]}) == ""


def test_the_table_says_how_far_each_cutoffs_posterior_can_be_trusted() -> None:
    from aftermath.inference.backtest import calibration_text

    def payload(method: str, diagnostics: dict) -> dict:
        return {"method": method, "folds": [{"cutoff": "2015-12", "calibrated_on": 14, "diagnostics": diagnostics}]}

    assert calibration_text(payload("laplace", {"pareto_k": 0.584, "ess": 2410.4})) == (
        "Calibrations (laplace): 2015-12: 14 observations, Pareto k 0.58, ESS 2,410.")
    assert calibration_text(payload("laplace", {"pareto_k": 0.89, "ess": 247.0})).endswith(
        "Pareto k 0.89, ESS 247 (k above 0.7: unreliable weights; give more --steps).")
    assert calibration_text(payload("prior", {"ess": 95.2})) == (
        "Calibrations (prior): 2015-12: 14 observations, ESS 95.")
    assert calibration_text(payload("emcee", {"rhat": {"a": 1.02, "b": 1.172, "c": None}})) == (
        "Calibrations (emcee): 2015-12: 14 observations, largest R-hat 1.17.")

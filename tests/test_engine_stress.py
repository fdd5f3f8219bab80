"""The stochastic engine under hostile numbers: it never hangs, never returns garbage with success.

Samplers are total functions (a draw or the error flag NaN); each step's counts are checked to be finite,
non-negative and within the ceiling, and a violation names flow or compartment, stratum, date, replicate,
parameter sample and the values involved. Anything that hung before runs in an isolated child with a time
limit (tests/isolated.py), so a regression fails instead of blocking the suite.

False-failure budget: one stochastic assertion, a Poisson draw at its limit within 10 SE (1.5e-23).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import pytest

from aftermath import ModelError, ScenarioError, compile_model, simulate
from aftermath.engines.diagnose import COUNT_CEILING
from aftermath.engines.kernels import MAX_DRAW, binomial, draw_key, poisson
from aftermath.summary import bands
from tests.conftest import cohort_scenario, scenario_from
from tests.isolated import Isolated


@numba.njit
def _binomial(n: float, p: float) -> float:
    return binomial(n, p, draw_key(np.uint64(1), 0, np.uint64(2), 3, 4))


@numba.njit
def _poisson(mean: float) -> float:
    return poisson(mean, draw_key(np.uint64(1), 0, np.uint64(2), 3, 4))


@pytest.mark.parametrize(
    ("n", "p"), [(np.nan, 0.3), (1e100, 0.3), (np.inf, 0.3), (MAX_DRAW * 2, 0.5), (5.0, np.nan), (np.nan, np.nan)]
)
def test_binomial_flags_what_it_cannot_draw_instead_of_looping(n: float, p: float, isolated: Isolated):
    assert np.isnan(isolated.call("tests.test_engine_stress:_binomial", n, p, limit=30))


@pytest.mark.parametrize("mean", [np.nan, np.inf, 1e300, 9.3e18, MAX_DRAW * 2])
def test_poisson_flags_what_it_cannot_draw_instead_of_overflowing(mean: float, isolated: Isolated):
    assert np.isnan(isolated.call("tests.test_engine_stress:_poisson", mean, limit=30))


@pytest.mark.parametrize(("n", "p"), [(2.0**53, 0.3), (1e12, 1e-13), (1e15, 0.999), (0.0, 0.5), (7.0, 1.5)])
def test_binomial_draws_within_its_domain(n: float, p: float, isolated: Isolated):
    """Counts up to 2**53 (MAX_DRAW, written out: the documented limit, not the constant) are drawn."""
    x = isolated.call("tests.test_engine_stress:_binomial", n, p, limit=30)
    assert 0 <= x <= n and x == np.floor(x)


def test_poisson_draws_up_to_its_limit(isolated: Isolated):
    x = isolated.call("tests.test_engine_stress:_poisson", 2.0**53, limit=30)  # MAX_DRAW, the documented limit
    assert abs(x - 2.0**53) < 10 * np.sqrt(2.0**53)  # 10 Poisson SE: P(|Z| > 10) = 1.5e-23 (a fixed key)


def _cohort_model(**changes: Any):
    data = cohort_scenario()
    for flow, rate in changes.pop("rates", {}).items():
        next(f for f in data["flows"] if f["name"] == flow)["rate"] = rate
    data.update(changes)
    return compile_model(scenario_from(data))


def nan_initial_count() -> str:
    data = cohort_scenario()
    data["parameters"]["size"] = {
        "unit": "persons", "dims": ["origin"], "value": {"A": 100, "B": 50}, "assumption": "test",
        "distribution": {"type": "uniform", "low": 0.9, "high": 1.1, "relative": True},
    }
    data["compartments"]["active"]["initial"] = "size"
    model = compile_model(scenario_from(data))
    drawn = {"size": np.array([[100.0, 50.0], [100.0, np.nan]])}
    return _model_error(lambda: simulate(model, 2, parameters=drawn))


def test_a_nan_initial_count_stops_the_run_naming_compartment_stratum_replicate_and_value(isolated: Isolated):
    message = isolated.call("tests.test_engine_stress:nan_initial_count")
    assert message.startswith("compartment 'active' holds NaN persons")
    assert "in stratum origin=B, 2015-01, replicate 1 (parameter sample 1)" in message
    assert "size=nan (drawn from its distribution)" in message


def astronomical_initial_count(engine: str) -> str:
    model = _cohort_model()
    initial = model.initial_state() + np.eye(1, model.cells, model.compartments[0].offset) * 1e100
    model.initial_state = lambda parameters=None: initial  # type: ignore[method-assign]
    return _model_error(lambda: simulate(model, 2, engine=engine))  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ["stochastic", "deterministic"])
def test_an_astronomical_initial_count_stops_the_run(engine: str, isolated: Isolated):
    message = isolated.call("tests.test_engine_stress:astronomical_initial_count", engine)
    assert "compartment 'active' holds 1e+100 persons in stratum origin=A, 2015-01" in message


def _model_error(call: Callable[[], Any]) -> str:
    try:
        call()
    except ModelError as exc:
        return str(exc)
    raise AssertionError("no ModelError")


def huge_inflow() -> str:
    model = _cohort_model()
    return _model_error(lambda: simulate(model, 3, parameters={"inflow": np.full(3, 1e300)}))


def test_a_poisson_mean_beyond_int64_stops_the_run_instead_of_wrapping_around(isolated: Isolated):
    message = isolated.call("tests.test_engine_stress:huge_inflow")
    assert message.startswith("flow 'recruiting' moved NaN persons")
    assert "in stratum origin=A, 2015-01, replicate 0 (parameter sample 0)" in message
    assert "inflow=1e+300 (drawn from its distribution)" in message


def test_a_runaway_rate_stops_at_the_ceiling_naming_compartment_and_values():
    model = _cohort_model(rates={"recruiting": "inflow * exp(t * leave * 30)"})
    message = _model_error(lambda: simulate(model, 2))
    assert message.startswith("compartment 'active' holds ")
    assert "in stratum origin=A, 2016-" in message and "inflow=20 (the file's value)" in message
    assert f"from 0 to {COUNT_CEILING:g} per cell" in message


def test_ensemble_members_name_their_parameter_sample():
    model = _cohort_model()
    inflow = np.array([20.0, 20.0, 1e300, 1e300])
    message = _model_error(
        lambda: simulate(model, 4, parameters={"inflow": inflow}, first_replicate=10, samples=np.array([5, 5, 6, 6]))
    )
    assert "replicate 12 (parameter sample 6)" in message


def test_rate_errors_name_stratum_replicate_sample_and_the_set_or_policy_behind_them():
    data = cohort_scenario(
        interventions={
            "cut": {"start": "2015-06", "effects": [{"parameter": "die", "add": -0.05}], "assumption": "test"}
        }
    )
    model = compile_model(scenario_from(data), overrides={"leave": 0.2}, policies={"cut": 1.0})
    message = _model_error(lambda: simulate(model, 2, engine="deterministic"))
    assert message.startswith("flow 'dying': its rate is -0.04 in stratum origin=A, 2015-06, replicate 0")
    assert "die=-0.04 (the file's value, changed by policy cut)" in message
    model = compile_model(scenario_from(cohort_scenario()), overrides={"leave": 0.2})
    drawn = {"die": np.array([[0.01, 0.02], [0.01, -0.5]])}
    message = _model_error(lambda: simulate(model, 2, parameters=drawn))
    assert "its rate is -0.5 in stratum origin=B, 2015-01, replicate 1 (parameter sample 1)" in message
    assert "die=-0.5 (drawn from its distribution)" in message
    model = compile_model(scenario_from(cohort_scenario(), "f.yaml"), overrides={"leave": 0.2})
    data = cohort_scenario()
    data["flows"][0]["rate"] = "leave * (1.5 - surge)"
    model = compile_model(scenario_from(data), overrides={"leave": 0.2})
    assert "leave=0.2 (--set)" in _model_error(lambda: simulate(model, 1))


def test_a_rate_in_an_empty_cell_moves_no_one_even_when_it_is_0_over_0():
    """Frequency dependence: the rate of going home divides by gone, 0/0 before anyone has left."""
    model = _cohort_model(rates={"going_home": "leave * gone / (gone + home) * (gone + home) / gone"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = simulate(model, 3)
    assert int(result["home_total"].isel(time=-1).min()) > 0
    assert np.isfinite(result["gone"].values).all()


def test_a_nan_rate_in_a_cell_with_people_still_stops_the_run():
    model = _cohort_model(rates={"dying": "die * (active - active) / (active - active)"})
    assert "flow 'dying': its rate is nan in stratum origin=A, 2015-01" in _model_error(lambda: simulate(model, 1))


def test_a_ratio_with_an_empty_denominator_is_undefined_without_warnings():
    data = cohort_scenario()
    data["outcomes"]["home_share"] = {"expr": "home / gone"}
    model = compile_model(scenario_from(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = simulate(model, 3)
        table = bands(result, ["2015-01", "2016-12"])
    assert np.isnan(result["home_share"].values[:, 0]).all()
    first, last = table[table.outcome == "home_share"].itertuples()
    assert np.isnan([first.median, first.low, first.high]).all()
    assert np.isfinite([last.median, last.low, last.high]).all()


def test_policy_composition_does_not_depend_on_the_order_typed():
    data = cohort_scenario(
        interventions={
            "cap": {"start": "2015-01", "effects": [{"parameter": "leave", "set": 0.01}], "assumption": "test"},
            "halve": {"start": "2015-01", "effects": [{"parameter": "leave", "multiply": 0.5}], "assumption": "test"},
            "more": {"start": "2015-01", "effects": [{"parameter": "leave", "add": 0.02}], "assumption": "test"},
        }
    )
    scenario = scenario_from(data)
    results = []
    for order in (("cap", "halve", "more"), ("more", "halve", "cap"), ("halve", "cap", "more")):
        model = compile_model(scenario, policies=dict.fromkeys(order, 1.0))
        results.append(simulate(model, 2, engine="deterministic")["home_total"].values)
        # sets, then multipliers, then additions: 0.01 * 0.5 + 0.02
        assert model.parameters_at(3, model.parameters)["leave"].item() == pytest.approx(0.025)
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])


def test_two_policies_setting_the_same_parameter_at_once_are_refused():
    data = cohort_scenario(
        interventions={
            "a": {"start": "2015-01", "effects": [{"parameter": "leave", "set": 0.01}], "assumption": "test"},
            "b": {"start": "2015-06", "effects": [{"parameter": "leave", "set": 0.05}], "assumption": "test"},
        }
    )
    with pytest.raises(ScenarioError, match="policies 'a' and 'b' both set 'leave' in 2015-06: the result would"):
        compile_model(scenario_from(data), policies={"a": 1.0, "b": 1.0})


@pytest.mark.parametrize(
    ("overrides", "policies", "message"),
    [
        ({"inflow": 1e300}, {}, "--set inflow=1e+300 is not a possible number of persons"),
        ({"leave": float("nan")}, {}, "--set leave=nan is not a finite number"),
        ({"leave": -0.1}, {}, "--set leave=-0.1: a rate cannot be negative"),
        ({"share": 3.0}, {}, "--set share=3 is not a probability"),
        ({}, {"push": float("nan")}, "policy 'push' has the strength nan"),
        ({}, {"push": float("inf")}, "policy 'push' has the strength inf"),
    ],
)
def test_set_and_policy_values_are_checked_against_the_files_limits(overrides, policies, message):
    data = cohort_scenario(
        interventions={
            "push": {"start": "2015-01", "effects": [{"parameter": "leave", "multiply": 2}], "assumption": "test"}
        }
    )
    with pytest.raises(ScenarioError, match=message.replace("+", r"\+")):
        compile_model(scenario_from(data), overrides=overrides, policies=policies)


def test_a_truncated_normal_is_honoured_by_the_sampler():
    from scipy import stats

    from aftermath.experiments.sampling import sample_draws

    data = cohort_scenario()
    data["parameters"]["leave"] = {
        "unit": "per month", "value": 0.03, "assumption": "test",
        "distribution": {"type": "normal", "mean": 0.03, "sd": 0.05, "low": 0.0, "high": 0.2},
    }
    draws = sample_draws(scenario_from(data), 2000, "mc", seed=3)["leave"]
    assert draws.min() >= 0.0 and draws.max() <= 0.2
    truncated = stats.truncnorm((0.0 - 0.03) / 0.05, (0.2 - 0.03) / 0.05, loc=0.03, scale=0.05)
    assert stats.kstest(draws, truncated.cdf).pvalue > 0.001

"""Engine and model numbers pinned to sources other than the code: closed forms derived by hand,
numpy's quantiles of the raw replicates, and the exact binomial distribution.

Every model here has outflows only (no inflows), for which the engines are exact at any step length:
a person present at t leaves over (t, t + dt] with probability 1 - exp(-H dt) and survives k steps with
probability exp(-H k dt) whatever dt is, so monthly, quarterly and yearly steps must all agree with
N0 exp(-H t) at the months they record. (Inflows are discretised, and their numbers may change with the
engine's sub-steps; none are used here.)

Statistical assertions (stochastic engine, fixed seeds) state their tolerance in standard errors of the
exact distribution, and the chance that a correct engine fails them:
P(|Z| > 5) = 5.7e-7 per comparison, at most 100 comparisons in this file -> below 6e-5 per run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aftermath import compile_model, simulate
from aftermath.summary import bands
from tests.conftest import scenario_from

STEPS = {"month": 1, "quarter": 3, "year": 12}
ENDS = {"month": "2017-12", "quarter": "2017-10", "year": "2021-01"}  # whole steps after 2015-01
N0 = 1000.0
HAZARDS = {"dying": 0.02, "returning": 0.03}  # per month
Z = 5.0  # tolerance in standard errors: two-sided false-failure chance 5.7e-7 per comparison


def outflow_scenario(step: str = "month", **extra: Any) -> dict[str, Any]:
    """N0 people in one compartment leaving by two competing exits: one into `home`, one to a sink."""
    data: dict[str, Any] = {
        "name": "outflow",
        "title": "outflow only",
        "time": {"start": "2015-01", "end": ENDS[step], "step": step},
        "compartments": {
            "present": {"initial": N0, "assumption": "test"},
            "home": {},
        },
        "boundaries": {"dead": {"kind": "sink"}},
        "parameters": {
            "die": {"unit": "per year", "value": 12 * HAZARDS["dying"], "fixed": "test", "assumption": "test"},
            "leave": {"unit": "per month", "value": HAZARDS["returning"], "fixed": "test", "assumption": "test"},
        },
        "flows": [
            {"name": "dying", "from": "present", "to": "dead", "rate": "die"},
            {"name": "returning", "from": "present", "to": "home", "rate": "leave"},
        ],
        "outcomes": {"present_total": {"expr": "present"}, "home_total": {"expr": "home"}},
    }
    data.update(extra)
    return data


def months_elapsed(dataset) -> np.ndarray:
    """Months from the first recorded date to each recorded date (t in the closed forms)."""
    times = dataset["time"].values.astype("datetime64[M]").astype(int)
    return (times - times[0]).astype(float)


@pytest.mark.parametrize("step", list(STEPS))
def test_deterministic_exits_follow_the_closed_form_at_every_step_length(step: str) -> None:
    """N(t) = N0 exp(-H t); home(t) = N0 h_r / H (1 - exp(-H t)), t in months, for any step dt."""
    result = simulate(compile_model(scenario_from(outflow_scenario(step))), replicates=1, engine="deterministic")
    t = months_elapsed(result)
    assert np.all(np.diff(t) == STEPS[step])
    total = sum(HAZARDS.values())
    np.testing.assert_allclose(result["present_total"].values[0], N0 * np.exp(-total * t), rtol=1e-12)
    expected_home = N0 * HAZARDS["returning"] / total * (1 - np.exp(-total * t))
    np.testing.assert_allclose(result["home_total"].values[0], expected_home, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(result["exited"].values[0], N0 - result["present_total"].values[0] - expected_home,
                               rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("step", list(STEPS))
def test_stochastic_survivors_are_binomial_at_every_step_length(step: str) -> None:
    """Each person stays k steps with probability q = exp(-H t), independently: N(t) ~ Binomial(N0, q).
    The mean over R runs is tested at Z standard errors of that binomial, sqrt(N0 q (1 - q) / R)."""
    runs = 400
    result = simulate(compile_model(scenario_from(outflow_scenario(step))), replicates=runs, seed=17)
    t = months_elapsed(result)
    q = np.exp(-sum(HAZARDS.values()) * t)
    values = result["present_total"].values
    assert np.array_equal(values, np.rint(values)), "the stochastic engine moves whole persons"
    mean = values.mean(axis=0)
    error = np.sqrt(N0 * q * (1 - q) / runs)
    assert mean[0] == N0
    assert (np.abs(mean[1:] - N0 * q[1:]) <= Z * error[1:]).all(), (mean, N0 * q)
    # the spread too: the sample variance's relative standard error is sqrt(2 / (R - 1)) = 0.071 at R = 400,
    # so 35% is 4.9 SE (false-failure chance 1e-6)
    last = values[:, -1]
    assert np.var(last, ddof=1) == pytest.approx(N0 * q[-1] * (1 - q[-1]), rel=0.35)


@pytest.mark.parametrize("step", list(STEPS))
def test_bands_are_numpys_quantiles_of_the_replicates(step: str) -> None:
    """The median and the 5-95% band equal numpy's (linear) quantiles of the raw replicates at each date."""
    result = simulate(compile_model(scenario_from(outflow_scenario(step))), replicates=200, seed=3)
    dates = [str(t)[:7] for t in result["time"].values[1::2]]
    table = bands(result, dates, ["present_total", "home_total"])
    assert len(table) == 2 * len(dates)
    for row in table.itertuples():
        raw = result[row.outcome].sel(time=np.datetime64(row.date, "M")).values
        low, median, high = np.quantile(raw, [0.05, 0.5, 0.95])
        assert (row.low, row.median, row.high) == (pytest.approx(low), pytest.approx(median), pytest.approx(high))
    spread = table[table.date == dates[-1]]
    assert (spread.high > spread.low).all(), "replicates must differ for the check to mean anything"


def policy_scenario(step: str, operation: str, value: float) -> dict[str, Any]:
    """The outflow model with a policy changing the return hazard from 2016-01 on."""
    policy = {"start": "2016-01", "effects": [{"parameter": "leave", operation: value}], "assumption": "test"}
    return outflow_scenario(step, interventions={"policy": policy})


# The return hazard under a policy of strength s, by hand from the definitions in the scenario guide:
# multiply m -> h (1 + s (m - 1)); add a -> h + s a; set v -> (1 - s) h + s v.
CHANGES = {
    "multiply": (0.5, lambda h, s: h * (1 + s * (0.5 - 1))),
    "add": (0.06, lambda h, s: h + s * 0.06),
    "set": (0.09, lambda h, s: (1 - s) * h + s * 0.09),
}


@pytest.mark.parametrize("step", ["month", "quarter", "year"])
@pytest.mark.parametrize("operation", list(CHANGES))
def test_partial_policy_strengths_give_the_hand_derived_hazard(step: str, operation: str) -> None:
    """At strengths 0.25, 0.5 and 0.75 (where s and s**2 differ), the hazard from 2016-01 is h'(s) above.
    Closed form: N(t) = N0 exp(-H t) up to t0 = 12 months, then N(t0) exp(-(h_d + h'(s)) (t - t0))."""
    value, changed = CHANGES[operation]
    scenario = scenario_from(policy_scenario(step, operation, value))
    t0 = 12.0
    h_d, h_r = HAZARDS["dying"], HAZARDS["returning"]
    for strength in (0.25, 0.5, 0.75):
        result = simulate(compile_model(scenario, policies={"policy": strength}), replicates=1, engine="deterministic")
        t = months_elapsed(result)
        after = h_d + changed(h_r, strength)
        expected = N0 * np.exp(-(h_d + h_r) * np.minimum(t, t0) - after * np.maximum(t - t0, 0))
        np.testing.assert_allclose(result["present_total"].values[0], expected, rtol=1e-12, err_msg=str(strength))


def test_partial_strength_of_a_schedule_effect() -> None:
    """A schedule scaled by a policy: rate = leave * pressure, pressure 1 -> 1 + s (0.4 - 1) from 2016-01."""
    data = outflow_scenario(
        "quarter",
        schedules={"pressure": {"interpolation": "step", "points": {"2015-01": 1.0}, "assumption": "test"}},
        interventions={"policy": {"start": "2016-01", "effects": [{"schedule": "pressure", "multiply": 0.4}],
                                  "assumption": "test"}},
    )
    data["flows"][1]["rate"] = "leave * pressure"
    scenario = scenario_from(data)
    for strength in (0.25, 0.5, 0.75):
        result = simulate(compile_model(scenario, policies={"policy": strength}), replicates=1, engine="deterministic")
        t = months_elapsed(result)
        after = HAZARDS["dying"] + HAZARDS["returning"] * (1 + strength * (0.4 - 1))
        expected = N0 * np.exp(-sum(HAZARDS.values()) * np.minimum(t, 12) - after * np.maximum(t - 12, 0))
        np.testing.assert_allclose(result["present_total"].values[0], expected, rtol=1e-12)


@pytest.mark.parametrize(("step", "end"), [("month", "2016-12"), ("quarter", "2016-10"), ("year", "2016-01")])
def test_a_policy_that_ends_restores_the_hazard(step: str, end: str) -> None:
    """Active in the steps from 2016-01 to the one starting at `end` (inclusive: the last active month, quarter
    or year) at strength 0.5: the changed hazard applies for 12 months only."""
    data = policy_scenario(step, "multiply", 0.5)
    data["interventions"]["policy"]["end"] = end
    result = simulate(compile_model(scenario_from(data), policies={"policy": 0.5}), replicates=1,
                      engine="deterministic")
    t = months_elapsed(result)
    total = sum(HAZARDS.values())
    changed = HAZARDS["dying"] + HAZARDS["returning"] * 0.75
    exposure = np.clip(t - 12, 0, 12)
    expected = N0 * np.exp(-total * (t - exposure) - changed * exposure)
    np.testing.assert_allclose(result["present_total"].values[0], expected, rtol=1e-12)


def test_a_schedule_policy_that_ends_restores_the_schedule() -> None:
    """A policy on a schedule from 2016-01 to the quarter starting 2016-10 (inclusive) at strength 0.5:
    pressure 1 -> 1 + 0.5 (0.4 - 1) = 0.7 for those 12 months only, then 1 again (by hand, as above)."""
    data = outflow_scenario(
        "quarter",
        schedules={"pressure": {"interpolation": "step", "points": {"2015-01": 1.0}, "assumption": "test"}},
        interventions={"policy": {"start": "2016-01", "end": "2016-10",
                                  "effects": [{"schedule": "pressure", "multiply": 0.4}], "assumption": "test"}},
    )
    data["flows"][1]["rate"] = "leave * pressure"
    result = simulate(compile_model(scenario_from(data), policies={"policy": 0.5}), replicates=1,
                      engine="deterministic")
    t = months_elapsed(result)
    exposure = np.clip(t - 12, 0, 12)
    changed = HAZARDS["dying"] + HAZARDS["returning"] * 0.7
    expected = N0 * np.exp(-sum(HAZARDS.values()) * (t - exposure) - changed * exposure)
    np.testing.assert_allclose(result["present_total"].values[0], expected, rtol=1e-12)


def test_a_parameter_written_in_another_dimension_order_keeps_its_strata() -> None:
    """A hazard written over (sex, origin) while the compartment is over (origin, sex): each stratum leaves
    at its own written hazard, N(t) = 200 exp(-(h_die + h[sex][origin]) t) (a transposition lost would
    reshape the 2 x 3 values into 3 x 2 and mix the strata)."""
    leave = {"f": {"A": 0.01, "B": 0.02, "C": 0.03}, "m": {"A": 0.04, "B": 0.05, "C": 0.06}}
    data = outflow_scenario("quarter", dimensions={"origin": ["A", "B", "C"], "sex": ["f", "m"]})
    data["compartments"]["present"] = {"dims": ["origin", "sex"], "initial": 200, "assumption": "test"}
    data["compartments"]["home"] = {"dims": ["origin", "sex"]}
    data["parameters"]["leave"] = {"unit": "per month", "dims": ["sex", "origin"], "value": leave,
                                   "fixed": "test", "assumption": "test"}
    result = simulate(compile_model(scenario_from(data)), replicates=1, engine="deterministic")
    t = months_elapsed(result)
    for sex, hazards in leave.items():
        for origin, hazard in hazards.items():
            expected = 200 * np.exp(-(HAZARDS["dying"] + hazard) * t)
            np.testing.assert_allclose(result["present"].sel(origin=origin, sex=sex).values[0], expected,
                                       rtol=1e-12, err_msg=f"{origin} {sex}")


@pytest.mark.parametrize("step", list(STEPS))
def test_an_event_moves_exactly_its_share_of_those_present(step: str) -> None:
    """An event on 2016-01 moving 25% of `present` home: against the same model without the event, `home`
    gains 0.25 N(t_e) at the event's date, where N(t_e) = N0 exp(-H t_e) is the count just before it."""
    event = [{"name": "amnesty", "date": "2016-01", "from": "present", "to": "home", "fraction": 0.25,
              "assumption": "test"}]
    with_event = simulate(compile_model(scenario_from(outflow_scenario(step, events=event))), replicates=1,
                          engine="deterministic")
    t = months_elapsed(with_event)
    at = int(np.flatnonzero(t == 12)[0])
    before = N0 * np.exp(-sum(HAZARDS.values()) * 12)
    without = simulate(compile_model(scenario_from(outflow_scenario(step))), replicates=1, engine="deterministic")
    assert without["present_total"].values[0, at] == pytest.approx(before, rel=1e-12)
    jump = with_event["home_total"].values[0, at] - without["home_total"].values[0, at]
    assert jump == pytest.approx(0.25 * before, rel=1e-12)
    assert with_event["present_total"].values[0, at] == pytest.approx(0.75 * before, rel=1e-12)
    np.testing.assert_array_equal(with_event["home_total"].values[0, :at], without["home_total"].values[0, :at])


def test_stochastic_event_share_is_binomial() -> None:
    """At the event each of the N0 present moves with probability 0.25 (event on the first date, before
    any exit): moved ~ Binomial(N0, 0.25); its mean over R runs is tested at Z binomial standard errors."""
    event = [{"name": "amnesty", "date": "2015-01", "from": "present", "to": "home", "fraction": 0.25,
              "assumption": "test"}]
    runs = 400
    result = simulate(compile_model(scenario_from(outflow_scenario(events=event))), replicates=runs, seed=8)
    moved = result["home_total"].values[:, 0]
    assert np.array_equal(moved, np.rint(moved))
    assert abs(moved.mean() - 0.25 * N0) <= Z * np.sqrt(N0 * 0.25 * 0.75 / runs)

"""engines/diagnose.py on the cells and steps where off-by-one slips would show: the first cell of a later
compartment, the last month of a policy, an empty first cell, and the ODE engine (which checks every rate
evaluation in Python, where the step engines check inside their kernel)."""

from __future__ import annotations

import numpy as np

from aftermath import compile_model, simulate
from aftermath.engines.diagnose import COUNT_CEILING
from aftermath.engines.steps import coarse_step
from aftermath.errors import ModelError
from tests.conftest import cohort_scenario, scenario_from


def _error(call) -> str:
    try:
        call()
    except ModelError as exc:
        return str(exc)
    raise AssertionError("no ModelError")


def test_a_bad_count_in_the_first_cell_of_a_later_compartment_is_named_there():
    data = cohort_scenario()
    data["parameters"]["start_gone"] = {"unit": "persons", "dims": ["origin"], "value": {"A": 1, "B": 2},
                                        "fixed": "test", "assumption": "test"}
    data["compartments"]["gone"]["initial"] = "start_gone"
    model = compile_model(scenario_from(data))
    drawn = {"start_gone": np.array([[np.nan, 2.0]])}
    message = _error(lambda: simulate(model, 1, engine="deterministic", parameters=drawn))
    assert message.startswith("compartment 'gone' holds NaN persons (a count or mean above")
    assert "in stratum origin=A, 2015-01, replicate 0 (parameter sample 0)" in message
    assert "start_gone=nan (drawn from its distribution)" in message


def test_a_policy_is_named_behind_a_bad_rate_in_its_last_month():
    """The policy runs 2015-06 to 2015-07 and takes 0.05 off 'die' (0.01 for origin A): -0.04. The rate
    'die + leave * (2.8 - surge)', with leave 0.03 and surge 1 + 5/12 in June, 1.5 in July, is
    -0.04 + 0.0415 = 0.0015 in June and -0.04 + 0.039 = -0.001 in July, the policy's last month."""
    data = cohort_scenario(interventions={"cut": {"start": "2015-06", "end": "2015-07", "assumption": "test",
                                                  "effects": [{"parameter": "die", "add": -0.05}]}})
    next(f for f in data["flows"] if f["name"] == "dying")["rate"] = "die + leave * (2.8 - surge)"
    model = compile_model(scenario_from(data), policies={"cut": 1.0})
    message = _error(lambda: simulate(model, 1, engine="deterministic"))
    assert message.startswith("flow 'dying': its rate is -0.001 in stratum origin=A, 2015-07, replicate 0")
    assert "die=-0.04 (the file's value, changed by policy cut)" in message
    assert "leave=0.03 (the file's value)" in message  # the policy changes 'die' only


def test_the_ode_engine_moves_no_one_from_an_empty_first_cell_even_at_0_over_0():
    """active[A] starts empty, so 'die * active / active' is 0/0 there until recruits arrive: the same
    model with 'die' alone is the expected answer (the two rates agree wherever anyone can die)."""
    def run(rate: str):
        data = cohort_scenario()
        data["compartments"]["active"]["initial"] = {"A": 0, "B": 300}
        next(f for f in data["flows"] if f["name"] == "dying")["rate"] = rate
        return simulate(compile_model(scenario_from(data)), 1, engine="ode")

    expected, ratio = run("die"), run("die * active / active")
    for name in ("active", "home", "entered", "exited"):
        np.testing.assert_allclose(ratio[name].values, expected[name].values, rtol=1e-6, err_msg=name)


def test_the_coarse_step_check_sees_no_hazard_in_an_empty_cell_at_0_over_0():
    """The same empty active[A]: the largest hazard is active[B]'s, leave x surge + die = 0.03 x 2 + 0.02 per
    month once the surge has reached 2 (2016-01); a hazard read in the empty cell would show instead."""
    data = cohort_scenario()
    data["compartments"]["active"]["initial"] = {"A": 0, "B": 300}
    next(f for f in data["flows"] if f["name"] == "dying")["rate"] = "die * active / active"
    check = coarse_step(compile_model(scenario_from(data)))
    assert check is not None and (check.compartment, check.stratum, check.date) == ("active", "origin=B", "2016-01")
    assert abs(check.hazard_step - 0.08) < 1e-12


def test_a_bad_count_moved_by_the_first_flow_cell_is_named():
    """'recruiting' listed first, so its stratum A is rate cell 0 of replicate 0: the first cell checked."""
    data = cohort_scenario()
    data["flows"].sort(key=lambda flow: flow["name"] != "recruiting")
    model = compile_model(scenario_from(data))
    message = _error(lambda: simulate(model, 1, engine="deterministic", parameters={"inflow": np.full(1, 1e300)}))
    assert message.startswith("flow 'recruiting' moved 1e+300 persons in stratum origin=A, 2015-01, replicate 0")


def test_a_count_over_the_ceiling_after_a_step_is_dated_at_the_step_it_is_reached():
    """active[A] starts at 0.9 x the ceiling and recruits 0.2 x the ceiling a month (each move within the
    ceiling): after the first month it holds more than the ceiling, so the date is 2015-02, not 2015-01."""
    data = cohort_scenario()
    data["parameters"]["start"] = {"unit": "persons", "dims": ["origin"], "value": {"A": 1, "B": 1},
                                   "fixed": "test", "assumption": "test"}
    data["compartments"]["active"]["initial"] = "start"
    model = compile_model(scenario_from(data))
    drawn = {"start": np.array([[0.9 * COUNT_CEILING, 1.0]]), "inflow": np.full(1, 0.2 * COUNT_CEILING)}
    message = _error(lambda: simulate(model, 1, engine="deterministic", parameters=drawn))
    assert message.startswith("compartment 'active' holds ")
    assert "in stratum origin=A, 2015-02, replicate 0" in message


def test_values_are_listed_past_a_compartment_name_in_the_rate():
    """'home' (empty at the start: 0/0) comes first in the rate's names, 'die' after it."""
    data = cohort_scenario()
    next(f for f in data["flows"] if f["name"] == "dying")["rate"] = "die * home / home"
    message = _error(lambda: simulate(compile_model(scenario_from(data)), 1, engine="deterministic"))
    assert "flow 'dying': its rate is nan in stratum origin=A, 2015-01" in message
    assert "; values (persons, months): die=0.01 (the file's value)" in message

"""Compiling at the edges: a step schedule between and beyond its points, and two policies that set the same
parameter in periods that touch at one month. Expected values are read off the points by hand."""

from __future__ import annotations

import numpy as np
import pytest

from aftermath import compile_model, simulate
from aftermath.errors import ScenarioError
from aftermath.model.compile import schedule_values
from aftermath.scenario.schema import Schedule, parse_month
from tests.conftest import scenario_from

FIXED = {"fixed": "test", "assumption": "test"}


@pytest.mark.parametrize("interpolation, expected", [
    ("step", [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]),
    ("linear", [1.0, 1.0, 4 / 3, 2.0, 2.0 + 5 / 6, 3.0, 3.0]),
])
def test_a_schedule_between_before_and_after_its_points(interpolation: str, expected: list[float]) -> None:
    """Points 1 (2014-01), 2 (2014-07), 3 (2015-01). 'step' holds the last point at or before a month;
    'linear' interpolates (2014-03, 2 of 6 months on: 1 + 2/6; 2014-12, 5 of 6: 2 + 5/6); before the first
    point and after the last, the nearest point's value."""
    schedule = Schedule(points={"2014-01": 1.0, "2014-07": 2.0, "2015-01": 3.0}, interpolation=interpolation,
                        sources=["test"])
    months = np.array([parse_month(m) for m in
                       ("2013-06", "2014-01", "2014-03", "2014-07", "2014-12", "2015-01", "2016-01")])
    np.testing.assert_allclose(schedule_values(schedule, months), expected, rtol=1e-12)


def _two_policies(first: tuple[str, str], second: tuple[str, str], step: str = "month"):
    def policy(period: tuple[str, str], value: float) -> dict:
        return {"start": period[0], "end": period[1], "description": "test", "assumption": "test",
                "effects": [{"parameter": "leave", "set": value}]}

    return scenario_from({
        "name": "overlap",
        "title": "two policies setting one parameter",
        "time": {"start": "2015-01", "end": "2015-12" if step == "month" else "2016-10", "step": step},
        "compartments": {"active": {"initial": 100, "assumption": "test"}, "gone": {}},
        "parameters": {"leave": {"unit": "per month", "value": 0.1, **FIXED}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
        "interventions": {"early": policy(first, 0.2), "late": policy(second, 0.3)},
    })


@pytest.mark.parametrize("order", [("early", "late"), ("late", "early")])
def test_policies_setting_one_parameter_may_not_share_a_month(order: tuple[str, str]) -> None:
    """'early' ends in 2015-06 (inclusive), 'late' starts then: they overlap in 2015-06, in either order
    of switching on; starting in 2015-07 they do not."""
    touching = _two_policies(("2015-01", "2015-06"), ("2015-06", "2015-12"))
    with pytest.raises(ScenarioError, match="both set 'leave' in 2015-06"):
        compile_model(touching, policies=dict.fromkeys(order))
    apart = _two_policies(("2015-01", "2015-06"), ("2015-07", "2015-12"))
    model = compile_model(apart, policies=dict.fromkeys(order))
    assert [effect.policy for effect in model.effects] == list(order)


@pytest.mark.parametrize("step, period, active_steps", [
    ("month", ("2015-06", "2015-07"), [5, 6]),
    ("quarter", ("2015-04", "2015-07"), [1, 2]),
])
def test_a_policy_applies_from_its_start_to_its_end_inclusive(step, period, active_steps) -> None:
    """'early' sets the hazard to 0.2 from its start to its end, both inclusive (the shortest policy the
    grid allows: two steps), 0.1 otherwise. With the hazard per month held over each step of `months`
    months, active = 100 exp(-months x the hazards so far)."""
    later = ("2015-10", "2015-12") if step == "month" else ("2016-04", "2016-07")
    model = compile_model(_two_policies(period, later, step), policies={"early": None})
    values = [np.asarray(model.parameters_at(s, model.parameters)["leave"]).item() for s in range(8)]
    assert values == [0.2 if s in active_steps else 0.1 for s in range(8)]
    months = 1.0 if step == "month" else 3.0
    active = simulate(model, 1, engine="deterministic")["active"].values[0, :8]
    exposure = months * np.concatenate([[0.0], np.cumsum(values[:7])])
    np.testing.assert_allclose(active, 100 * np.exp(-exposure), rtol=1e-12)


def test_sub_steps_from_one_to_the_most_are_accepted_and_others_refused() -> None:
    from aftermath.scenario.schema import MAX_SUBSTEPS

    scenario = _two_policies(("2015-01", "2015-06"), ("2015-07", "2015-12"))
    assert compile_model(scenario, substeps=1).substeps == 1
    assert compile_model(scenario, substeps=MAX_SUBSTEPS).substeps == MAX_SUBSTEPS
    for wrong in (0, MAX_SUBSTEPS + 1):
        with pytest.raises(ScenarioError, match=f"{wrong} sub-steps"):
            compile_model(scenario, substeps=wrong)


def test_a_context_is_broadcast_over_the_dimensions_it_lacks() -> None:
    """Arrays are aligned on every dimension of the model, in its order, with 1 where a context has none."""
    model = compile_model(scenario_from({
        "name": "aligned",
        "title": "two dimensions",
        "time": {"start": "2015-01", "end": "2015-06"},
        "dimensions": {"origin": ["A", "B", "C"], "sex": ["f", "m"]},
        "compartments": {"active": {"dims": ["origin", "sex"], "initial": 100, "assumption": "test"}, "gone": {}},
        "parameters": {"leave": {"unit": "per month", "value": 0.1, **FIXED}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
    }))
    assert model.aligned_shape(("origin",)) == (3, 1)
    assert model.aligned_shape(("sex",)) == (1, 2)
    assert model.aligned_shape(()) == (1, 1)
    assert model.aligned_shape(("sex", "origin")) == (3, 2)


def _hazard_model(unit: str = "per month", value: float = 0.1, effect: dict | None = None, end: str | None = None):
    intervention = {"start": "2015-04", "description": "test", "assumption": "test",
                    "effects": [effect or {"parameter": "leave", "multiply": 2.0}]}
    if end:
        intervention["end"] = end
    return scenario_from({
        "name": "hazard",
        "title": "one hazard and a policy on it",
        "time": {"start": "2015-01", "end": "2015-07"},
        "compartments": {"active": {"initial": 1000, "assumption": "test"}, "gone": {}},
        "parameters": {"leave": {"unit": unit, "value": value, **FIXED}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
        "interventions": {"policy": intervention},
    })


@pytest.mark.parametrize("effect, unit, value, after", [
    ({"parameter": "leave", "multiply": 2.0}, "per year", 1.2, 0.2),  # 0.1 a month, doubled
    ({"parameter": "leave", "set": 2.4}, "per year", 1.2, 0.2),  # set in the declared unit: 2.4 a year
    ({"parameter": "leave", "set": 0.3}, "per month", 0.1, 0.3),
])
def test_a_policy_without_an_end_acts_from_its_start_to_the_last_step_in_base_units(effect, unit, value, after):
    """A hazard of `value` `unit` (0.1 a month), changed from 2015-04 (step 3) on by a policy with no end: a
    factor is unitless, a set value is in the parameter's declared unit (2.4 a year = 0.2 a month). The
    1,000 active decay as exp(-(the monthly hazards so far)), the changed one up to the last step."""
    model = compile_model(_hazard_model(unit, value, effect), policies={"policy": None})
    hazards = np.array([0.1, 0.1, 0.1, after, after, after])
    active = simulate(model, 1, engine="deterministic")["active"].values[0]
    np.testing.assert_allclose(active, 1000 * np.exp(-np.concatenate([[0.0], np.cumsum(hazards)])), rtol=1e-12)


def test_a_policy_strength_is_a_share_from_0_to_1_and_names_must_exist() -> None:
    scenario = _hazard_model()
    with pytest.raises(ScenarioError, match="strength"):
        compile_model(scenario, policies={"policy": -0.5})
    with pytest.raises(ScenarioError) as unknown:
        compile_model(scenario, policies={"nope": None})
    assert "one of: policy" in str(unknown.value) + str(getattr(unknown.value, "expected", ""))
    with pytest.raises(ScenarioError, match="--set names an unknown parameter 'nope'"):
        compile_model(scenario, overrides={"nope": 1.0})


def test_per_run_values_of_a_parameter_over_two_dims_in_another_order_reach_their_cells() -> None:
    """`leave` is declared over (sex, origin) while the scenario orders its dims origin, sex: per-run values
    (runs, sex, origin) must reach cell (origin, sex) in each run: the first month's exits from 100 persons
    are 100 (1 - exp(-h)) with each run's own h for that cell."""
    model = compile_model(scenario_from({
        "name": "two_dims",
        "title": "a parameter over two dims in another order",
        "time": {"start": "2015-01", "end": "2015-03"},
        "dimensions": {"origin": ["A", "B", "C"], "sex": ["f", "m"]},
        "compartments": {"active": {"dims": ["origin", "sex"], "initial": 100, "assumption": "test"},
                         "gone": {"dims": ["origin", "sex"]}},
        "parameters": {"leave": {"unit": "per month", "dims": ["sex", "origin"], "value": 0.1, **FIXED}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
    }))
    hazards = np.arange(1, 19, dtype=float).reshape(3, 2, 3) / 100  # (runs, sex, origin): 3 runs, no size twice
    gone = simulate(model, 3, engine="deterministic", parameters={"leave": hazards})["gone"].values[:, 1]
    np.testing.assert_allclose(gone, 100 * -np.expm1(-hazards.transpose(0, 2, 1)), rtol=1e-12)


@pytest.mark.parametrize("stratified_flow", [False, True])
def test_a_rate_reads_a_compartment_summed_over_the_strata_its_flow_lacks(stratified_flow: bool) -> None:
    """Recruits join `pool` at 0.1 a month per active person, the active (100, 200, 300 by origin) never
    leaving: an unstratified pool gains 0.1 x 600 = 60 a month (the sum over origins), a pool by origin
    10, 20 and 30 (each origin's own count)."""
    dims = ["origin"] if stratified_flow else []
    model = compile_model(scenario_from({
        "name": "pool",
        "title": "an inflow that reads a stratified compartment",
        "time": {"start": "2015-01", "end": "2015-03"},
        "dimensions": {"origin": ["A", "B", "C"]},
        "compartments": {"active": {"dims": ["origin"], "initial": {"A": 100, "B": 200, "C": 300},
                                    "assumption": "test"},
                         "pool": {"dims": dims}},
        "boundaries": {"recruits": {"kind": "source"}},
        "parameters": {"pull": {"unit": "per month", "value": 0.1, **FIXED},
                       "stay": {"unit": "per month", "value": 0.0, **FIXED}},
        "flows": [{"name": "recruiting", "from": "recruits", "to": "pool", "rate": "pull * active"},
                  {"name": "staying", "from": "active", "to": "pool", "rate": "stay"}],
    }))
    pool = simulate(model, 1, engine="deterministic")["pool"].values[0]
    expected = np.array([10.0, 20.0, 30.0]) if stratified_flow else np.array(60.0)
    np.testing.assert_allclose(pool[1], expected, rtol=1e-12)
    np.testing.assert_allclose(pool[2], 2 * expected, rtol=1e-12)


def test_each_run_starts_from_its_own_initial_count_and_a_model_needs_no_parameter() -> None:
    """An initial count read from a parameter with per-run values starts each run there (100, 250, 400);
    a model with no parameter at all (a rate of 0) starts all its runs from the declared count."""
    model = compile_model(scenario_from({
        "name": "sizes",
        "title": "per-run initial counts",
        "time": {"start": "2015-01", "end": "2015-03"},
        "compartments": {"active": {"initial": "size", "assumption": "test"}, "gone": {}},
        "parameters": {"size": {"unit": "persons", "value": 100.0, **FIXED}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "0"}],
    }))
    active = simulate(model, 3, engine="deterministic", parameters={"size": np.array([100.0, 250.0, 400.0])})
    np.testing.assert_array_equal(active["active"].values[:, 0], [100.0, 250.0, 400.0])
    bare = compile_model(scenario_from({
        "name": "bare",
        "title": "no parameters",
        "time": {"start": "2015-01", "end": "2015-03"},
        "compartments": {"active": {"initial": 5, "assumption": "test"}, "gone": {}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "0"}],
    }))
    np.testing.assert_array_equal(simulate(bare, 3, engine="deterministic")["active"].values, [[5.0] * 3] * 3)


@pytest.mark.parametrize("pool_dims, expected", [
    ([], 2100.0),
    (["origin"], [300.0, 700.0, 1100.0]),
    (["sex"], [900.0, 1200.0]),
])
def test_a_rate_reads_a_two_dim_compartment_summed_over_each_dim_its_flow_lacks(pool_dims, expected) -> None:
    """`active` is held over (origin, sex) at f/m = 100/200, 300/400, 500/600, nobody leaving; recruits join
    `pool` at 0.1 a month per active person read in the pool's strata: by origin the sums over sex (300, 700,
    1,100), by sex the sums over origins (900, 1,200), unstratified all 2,100. Two runs, so a sum that strays
    onto the runs' axis doubles."""
    model = compile_model(scenario_from({
        "name": "pool",
        "title": "an inflow that reads a compartment over two dims",
        "time": {"start": "2015-01", "end": "2015-03"},
        "dimensions": {"origin": ["A", "B", "C"], "sex": ["f", "m"]},
        "compartments": {"active": {"dims": ["origin", "sex"], "assumption": "test", "initial": {
                             "A": {"f": 100, "m": 200}, "B": {"f": 300, "m": 400}, "C": {"f": 500, "m": 600}}},
                         "pool": {"dims": pool_dims}},
        "boundaries": {"recruits": {"kind": "source"}},
        "parameters": {"pull": {"unit": "per month", "value": 0.1, **FIXED},
                       "stay": {"unit": "per month", "value": 0.0, **FIXED}},
        "flows": [{"name": "recruiting", "from": "recruits", "to": "pool", "rate": "pull * active"},
                  {"name": "staying", "from": "active", "to": "pool", "rate": "stay"}],
    }))
    pool = simulate(model, 2, engine="deterministic")["pool"].values
    for run in range(2):
        np.testing.assert_allclose(pool[run, 1], 0.1 * np.array(expected), rtol=1e-12)
        np.testing.assert_allclose(pool[run, 2], 0.2 * np.array(expected), rtol=1e-12)


def test_a_policy_reaches_rates_read_at_every_step_up_to_its_last_step() -> None:
    """Recruits join at `grow` (0.1 a month) per active person, a rate read afresh at every step since it reads
    a count; a policy sets `grow` to 0.2 from 2015-06 to 2015-07 (steps 5 and 6, both inclusive). Each month
    multiplies the active by 1 + grow: 1,000 x 1.1^5 x 1.2^2 x 1.1 after step 7."""
    model = compile_model(scenario_from({
        "name": "growing",
        "title": "a policy on a rate that reads a count",
        "time": {"start": "2015-01", "end": "2015-09"},
        "compartments": {"active": {"initial": 1000, "assumption": "test"}},
        "boundaries": {"recruits": {"kind": "source"}},
        "parameters": {"grow": {"unit": "per month", "value": 0.1, **FIXED}},
        "flows": [{"name": "joining", "from": "recruits", "to": "active", "rate": "grow * active"}],
        "interventions": {"surge": {"start": "2015-06", "end": "2015-07", "description": "test",
                                    "assumption": "test", "effects": [{"parameter": "grow", "set": 0.2}]}},
    }), policies={"surge": None})
    grow = np.array([0.1] * 5 + [0.2] * 2 + [0.1])
    active = simulate(model, 1, engine="deterministic")["active"].values[0]
    np.testing.assert_allclose(active, 1000 * np.concatenate([[1.0], np.cumprod(1 + grow)]), rtol=1e-12)

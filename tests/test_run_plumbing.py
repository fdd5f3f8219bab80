"""How `simulate` lays a run out, against values worked out by hand: replicates per block, stretches of
steps in one kernel call, progress, the time and the rates each step sees, flow outcomes at quarterly and
yearly steps, two sub-steps, an event into the very first cell, a one-month pulse in a schedule.

Everything here is deterministic (the deterministic and ODE engines, fixed inputs); no false failures.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import aftermath.engines.simulate as simulate_module
from aftermath import compile_model, simulate
from tests.conftest import cohort_scenario, scenario_from

FIXED = {"fixed": "test", "assumption": "test"}


def _strata_data() -> dict:
    """3 origins x 3 compartments = 9 cells, 2 flows x 3 origins = 6 rate cells, 6 reporting points; outcomes:
    one state row (active, all origins) and three flow rows (killing by origin)."""
    return {
        "name": "strata",
        "title": "competing hazards by origin",
        "time": {"start": "2015-01", "end": "2015-06"},
        "dimensions": {"origin": ["A", "B", "C"]},
        "compartments": {"active": {"dims": ["origin"], "initial": 1000, "assumption": "test"},
                         "killed": {"dims": ["origin"]}, "returned": {"dims": ["origin"]}},
        "parameters": {"kill": {"unit": "per month", "value": 0.02, **FIXED},
                       "go_home": {"unit": "per month", "value": 0.01, **FIXED}},
        "flows": [{"name": "killing", "from": "active", "to": "killed", "rate": "kill"},
                  {"name": "return", "from": "active", "to": "returned", "rate": "go_home"}],
        "outcomes": {"fighters": {"expr": "active"}, "deaths": {"expr": "killing", "by": ["origin"]}},
    }


def _strata():
    return compile_model(scenario_from(_strata_data()))


@pytest.mark.parametrize("keep", [False, True])
def test_a_block_holds_as_many_replicates_as_its_numbers_fit_in_the_budget(keep: bool, monkeypatch) -> None:
    """Per replicate a block holds 8 bytes for each recorded number at each reporting point (4 outcome rows,
    plus the 9 cells when compartments are kept, x 6 points) and for 4 working numbers per cell (state, next
    state, two cached exit values) and per rate cell (rate, moved, two cached split values): 8 x (4 x 6 + 36
    + 24) = 672 bytes, or 8 x (13 x 6 + 36 + 24) = 1,104 kept. Blocks hold 16 to 1,024 replicates."""
    model = _strata()
    tables = simulate_module.outcome_tables(model)
    sizes = (tables.from_state.rows, tables.from_moved.rows, model.cells, model.rate_cells, model.steps)
    assert sizes == (1, 3, 9, 6, 5)
    per_replicate = 1104 if keep else 672
    for budget, expected in [(per_replicate * 100 + 7, 100), (per_replicate * 100 - 1, 99), (1, 16), (10**12, 1024),
                             (per_replicate * 1024, 1024), (per_replicate * 1023 + per_replicate - 1, 1023)]:
        monkeypatch.setattr(simulate_module, "RECORD_BUDGET_BYTES", budget)
        assert simulate_module._block_size(model, tables, keep) == expected, budget


def _count_stretches(monkeypatch) -> list[tuple[int, int]]:
    """Record (first step, steps) of every stretch that simulate hands to a span kernel in one call (the
    stochastic engine's advance_span, the deterministic engine's expected_span)."""
    calls: list[tuple[int, int]] = []

    def counting(kernel, first_step: int):
        def count(*args):
            calls.append((int(args[first_step]), int(args[first_step + 1])))
            return kernel(*args)
        return count

    monkeypatch.setattr(simulate_module, "advance_span", counting(simulate_module.advance_span, 12))
    monkeypatch.setattr(simulate_module, "expected_span", counting(simulate_module.expected_span, 10))
    return calls


@pytest.mark.parametrize("engine", ["deterministic", "stochastic"])
def test_steps_whose_rates_do_not_change_run_as_one_stretch_up_to_an_event(engine: str, monkeypatch) -> None:
    """The strata model's 5 steps have constant rates: one stretch of 5 steps from step 0. With events on
    2015-03 and 2015-04 (steps 2 and 3) stretches stop before each: steps 0-1, step 2 alone (a single step
    is no stretch), then 3-4. A rate that reads the time t is evaluated every step: no stretch at all. Each
    layout gives the same numbers as step by step (tests/test_engines.py)."""
    calls = _count_stretches(monkeypatch)
    simulate(_strata(), 2, engine=engine, seed=3)
    assert calls == [(0, 5)]
    calls.clear()
    data = _strata_data()
    data["events"] = [{"name": name, "date": date, "from": "active", "to": "returned", "fraction": 0.5,
                       "assumption": "test"} for name, date in (("amnesty", "2015-03"), ("pardon", "2015-04"))]
    simulate(compile_model(scenario_from(data)), 2, engine=engine, seed=3)
    assert calls == [(0, 2), (3, 2)]
    calls.clear()
    data = _strata_data()
    data["parameters"]["span"] = {"unit": "months", "value": 10.0, **FIXED}
    data["flows"][0]["rate"] = "kill * (1 + t / span)"
    simulate(compile_model(scenario_from(data)), 2, engine=engine, seed=3)
    assert calls == []


def test_progress_counts_each_block_once() -> None:
    """7 replicates in blocks of 3: progress hears 3, 3 and 1."""
    heard: list[int] = []
    simulate(_strata(), 7, engine="deterministic", block_size=3, progress=heard.append)
    assert heard == [3, 3, 1]


def _steady(step: str, substeps: int = 1, rate: str = "inflow"):
    return compile_model(scenario_from({
        "name": "steady",
        "title": "an inflow",
        "time": {"start": "2015-01", "end": "2018-01", "step": step, "substeps": substeps},
        "compartments": {"active": {}},
        "boundaries": {"recruits": {"kind": "source"}},
        "parameters": {"inflow": {"unit": "persons per month", "value": 12.0, **FIXED},
                       "span": {"unit": "months", "value": 3.0, **FIXED}},
        "flows": [{"name": "recruiting", "from": "recruits", "to": "active", "rate": rate}],
        "outcomes": {"arrivals": {"expr": "recruiting"}, "arrived": {"expr": "recruiting", "cumulative": True}},
    }))


@pytest.mark.parametrize("engine", ["deterministic", "ode"])
@pytest.mark.parametrize("step, months", [("month", 1.0), ("quarter", 3.0), ("year", 12.0)])
def test_a_flow_outcome_is_persons_per_month_and_its_cumulative_a_count_at_any_step(engine, step, months) -> None:
    """12 persons a month arrive: the flow outcome reads 12 (persons per month) at every date after the start
    whatever the step, and the cumulative one 12 x months elapsed (36 a quarter, 144 a year)."""
    result = simulate(_steady(step), 1, engine=engine)
    arrivals, arrived = result["arrivals"].values[0], result["arrived"].values[0]
    elapsed = months * np.arange(len(arrived))
    np.testing.assert_allclose(arrivals[1:], 12.0, rtol=1e-9)
    np.testing.assert_allclose(arrived, 12.0 * elapsed, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("step, months", [("month", 1.0), ("quarter", 3.0), ("year", 12.0)])
def test_a_step_reads_the_time_at_its_start_in_months(step: str, months: float) -> None:
    """An inflow of 12 t / 3 persons a month at t months, one sub-step: the step from date k - 1 to date k
    runs at the rate of its start, t = (k - 1) x months, so the flow outcome at date k is 4 (k - 1) months
    persons a month."""
    arrivals = simulate(_steady(step, rate="inflow * t / span"), 1, engine="deterministic")["arrivals"].values[0]
    k = np.arange(1, len(arrivals))
    np.testing.assert_allclose(arrivals[1:], 4.0 * (k - 1) * months, rtol=1e-12)


def test_two_sub_steps_add_up_in_the_flow_outcome() -> None:
    """The same ramp at monthly steps of two sub-steps: the step from month 1 to 2 runs half a month at
    t = 1 (4 persons a month) and half at t = 1.5 (6): 2 + 3 = 5 persons, 5 a month."""
    arrivals = simulate(_steady("month", 2, rate="inflow * t / span"), 1, engine="deterministic")["arrivals"].values
    assert arrivals[0, 1] == pytest.approx(1.0, rel=1e-12)  # 0 + half a month at t = 0.5: 1 person
    assert arrivals[0, 2] == pytest.approx(5.0, rel=1e-12)


@pytest.mark.parametrize("engine", ["deterministic", "stochastic", "ode"])
def test_an_event_into_the_very_first_cell_moves_people_and_counts_no_exit(engine: str) -> None:
    """Half of 100 staged persons join `active` (the model's first cell) on 2015-03: active holds 50 from
    then on (stochastic: a binomial share, the same from then on), the rest stay staged, nobody has exited."""
    model = compile_model(scenario_from({
        "name": "first",
        "title": "an event into the first cell",
        "time": {"start": "2015-01", "end": "2015-06"},
        "compartments": {"active": {}, "staged": {"initial": 100, "assumption": "test"}},
        "parameters": {"stay": {"unit": "per month", "value": 0.0, **FIXED}},
        "flows": [{"name": "leaving", "from": "active", "to": "staged", "rate": "stay"}],
        "events": [{"name": "joining", "date": "2015-03", "from": "staged", "to": "active", "fraction": 0.5,
                    "assumption": "test"}],
    }))
    assert model.compartments[0].name == "active" and model.compartments[0].offset == 0
    result = simulate(model, 2, engine=engine, seed=1)
    active, staged = result["active"].values, result["staged"].values
    np.testing.assert_allclose(active + staged, 100.0)
    assert (result["exited"].values == 0).all() and (active[:, :2] == 0).all()
    if engine == "stochastic":  # Binomial(100, 1/2) joined: 49 and 51 with this seed
        assert ((active[:, 2:] > 0) & (active[:, 2:] == active[:, 2:3])).all()
    else:
        np.testing.assert_allclose(active, [[0, 0, 50, 50, 50, 50]] * 2)


@pytest.mark.parametrize("engine", ["deterministic", "ode"])
def test_a_one_month_pulse_in_a_schedule_raises_the_rate_for_that_month_only(engine: str) -> None:
    """A hazard of 0.1 a month times a schedule that is 1, then 3 in 2015-04 only: the 1,000 active decay
    as 1000 exp(-0.1 x (the schedule summed over the months before)), i.e. exp(-0.1 k) up to 2015-04 and
    exp(-0.1 (k + 2)) after it, the step engine's exact exponential exits matching the ODE's."""
    model = compile_model(scenario_from({
        "name": "pulse",
        "title": "a one-month pulse",
        "time": {"start": "2015-01", "end": "2015-08"},
        "compartments": {"active": {"initial": 1000, "assumption": "test"}, "gone": {}},
        "parameters": {"leave": {"unit": "per month", "value": 0.1, **FIXED}},
        "schedules": {"pulse": {"interpolation": "step", "points": {"2015-01": 1.0, "2015-04": 3.0, "2015-05": 1.0},
                                "assumption": "test"}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave * pulse"}],
    }))
    pulse = np.array([1, 1, 1, 3, 1, 1, 1])
    exposure = 0.1 * np.concatenate([[0.0], np.cumsum(pulse)])
    active = simulate(model, 1, engine=engine)["active"].values[0]
    np.testing.assert_allclose(active, 1000 * np.exp(-exposure), rtol=1e-6 if engine == "ode" else 1e-12)


def test_the_groups_to_recompute_are_those_with_a_flow_due() -> None:
    """The kernel recomputes a group of outflows (the flows leaving one compartment) when any of its flows'
    rates is evaluated again: in the strata model both flows leave `active` (one group); in a model with a
    second compartment's exit there are two groups, each due only with its own flow."""
    data = _strata_data()
    data["parameters"]["rearm"] = {"unit": "per month", "value": 0.5, **FIXED}
    data["flows"].append({"name": "rearming", "from": "returned", "to": "active", "rate": "rearm"})
    model = compile_model(scenario_from(data))
    tables = simulate_module.kernel_tables(model)
    names = [f.name for f in model.flows]
    for due_flows, expected in [((), [False, False]), (("killing",), [True, False]), (("return",), [True, False]),
                                (("rearming",), [False, True]), (("killing", "rearming"), [True, True])]:
        due = np.array([name in due_flows for name in names])
        assert simulate_module._fresh_groups(tables, due).tolist() == expected, due_flows


def test_a_parameter_batch_with_the_wrong_number_of_runs_is_named_with_its_rows() -> None:
    model = _strata()
    with pytest.raises(ValueError, match="parameter 'kill' has 5 rows for 2 replicates"):
        simulate(model, 2, engine="deterministic", parameters={"kill": np.full(5, 0.02)})


def test_competing_exits_by_stratum_in_the_ode_engine_match_the_closed_form() -> None:
    """Constant hazards (0.02 killed, 0.01 returned a month) in each of three origins: the ODE engine's
    counts at month 5 are 1000 exp(-0.15) active and 1000 (1 - exp(-0.15)) x 2/3 killed, cell by cell."""
    result = simulate(_strata(), 1, engine="ode")
    leaving = 1000 * -math.expm1(-0.03 * 5)
    np.testing.assert_allclose(result["active"].values[0, 5], 1000 - leaving, rtol=1e-6)
    np.testing.assert_allclose(result["killed"].values[0, 5], leaving * 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(result["returned"].values[0, 5], leaving / 3, rtol=1e-6)


@pytest.mark.parametrize("hazard", [1e-10, 4e-9])
def test_an_inflow_reads_a_compartments_mean_occupancy_over_the_step(hazard: float) -> None:
    """Births at 0.5 a month per active person, who leave at `hazard` a month: a step engine's inflow reads
    the active's mean count over the step, n (1 - e^-x) / x for x = hazard x 1 month (computed here with
    math.expm1; below x = 1e-9 the engine takes the series 1 - x / 2, above it the closed form): the first
    month's births are 500 (1 - e^-x) / x to 1e-14 relative, a difference the series' next term cannot make."""
    model = compile_model(scenario_from({
        "name": "births",
        "title": "births from a compartment that barely empties",
        "time": {"start": "2015-01", "end": "2015-03"},
        "compartments": {"active": {"initial": 1000, "assumption": "test"}},
        "boundaries": {"born": {"kind": "source"}, "gone": {"kind": "sink"}},
        "parameters": {"birth": {"unit": "per month", "value": 0.5, **FIXED},
                       "leave": {"unit": "per month", "value": hazard, **FIXED}},
        "flows": [{"name": "births", "from": "born", "to": "active", "rate": "birth * active"},
                  {"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
        "outcomes": {"born_per_month": {"expr": "births"}},
    }))
    births = simulate(model, 1, engine="deterministic")["born_per_month"].values[0, 1]
    assert births == pytest.approx(500.0 * -math.expm1(-hazard) / hazard, rel=1e-14, abs=0)
    assert births != 500.0


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_an_event_may_move_everyone_or_nobody(fraction: float) -> None:
    """Fractions of exactly 0 and 1 are shares like any other: none or all of the 100 staged join `active`
    on 2015-03."""
    model = compile_model(scenario_from({
        "name": "all",
        "title": "an event that moves everyone",
        "time": {"start": "2015-01", "end": "2015-04"},
        "compartments": {"active": {}, "staged": {"initial": 100, "assumption": "test"}},
        "parameters": {"stay": {"unit": "per month", "value": 0.0, **FIXED}},
        "flows": [{"name": "leaving", "from": "active", "to": "staged", "rate": "stay"}],
        "events": [{"name": "joining", "date": "2015-03", "from": "staged", "to": "active", "fraction": fraction,
                    "assumption": "test"}],
    }))
    result = simulate(model, 1, engine="deterministic")
    np.testing.assert_array_equal(result["active"].values[0], [0, 0, 100 * fraction, 100 * fraction])
    np.testing.assert_array_equal(result["staged"].values[0], [100, 100, 100 * (1 - fraction), 100 * (1 - fraction)])


def test_a_run_needs_a_replicate_and_per_run_values_with_a_runs_axis() -> None:
    model = _strata()
    with pytest.raises(ValueError, match="replicates must be at least 1"):
        simulate(model, 0, engine="deterministic")
    with pytest.raises(ValueError, match=r"parameter 'kill': expected shape \(runs, \), got \(\)"):
        simulate(model, 1, engine="deterministic", parameters={"kill": np.float64(0.02)})


def test_the_default_seed_is_zero() -> None:
    """A run without a seed is the run with seed 0, so rerunning it gives the same arrays."""
    unseeded = simulate(_strata(), 3, engine="stochastic")
    seeded = simulate(_strata(), 3, engine="stochastic", seed=0)
    for name in unseeded.data_vars:
        np.testing.assert_array_equal(unseeded[name].values, seeded[name].values)


@pytest.mark.parametrize("engine", ["deterministic", "ode"])
def test_an_inflow_after_other_flows_fills_its_own_cells(engine: str) -> None:
    """Recruits arrive at 10, 20 and 30 persons a month into origins A, B and C through the third flow of the
    strata model (its cells come after the two exits'): the flow outcome by origin reads 10, 20 and 30."""
    data = _strata_data()
    data["boundaries"] = {"recruits": {"kind": "source"}}
    data["parameters"]["recruit"] = {"unit": "persons per month", "dims": ["origin"],
                                     "value": {"A": 10.0, "B": 20.0, "C": 30.0}, **FIXED}
    data["flows"].append({"name": "recruiting", "from": "recruits", "to": "active", "rate": "recruit"})
    data["outcomes"]["arrivals"] = {"expr": "recruiting", "by": ["origin"]}
    arrivals = simulate(compile_model(scenario_from(data)), 1, engine=engine)["arrivals"].values[0]
    np.testing.assert_allclose(arrivals[1:], np.broadcast_to([10.0, 20.0, 30.0], arrivals[1:].shape), rtol=1e-9)


@pytest.mark.parametrize("engine", ["deterministic", "stochastic"])
def test_each_outcome_owns_a_writable_array(engine: str) -> None:
    """Outcomes made of the same compartment (a total and one by stratum, a cumulative flow) come back as
    arrays of their own: writing into one changes no other, and none is a read-only broadcast."""
    data = cohort_scenario()
    data["outcomes"]["active_by_origin"] = {"expr": "active", "by": ["origin"]}
    data["outcomes"]["active_again"] = {"expr": "active"}
    result = simulate(compile_model(scenario_from(data)), 3, seed=1, engine=engine, keep_compartments=False)
    arrays = [result[name].values for name in ("active_total", "active_again", "active_by_origin", "leavers")]
    for index, array in enumerate(arrays):
        assert array.flags.writeable
        assert not any(np.shares_memory(array, other) for other in arrays[index + 1 :])

"""The engines against closed forms, each other, and themselves (reproducibility)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from aftermath import ModelError, compile_model, simulate
from aftermath.engines.kernels import LANES, NARROW_LANES
from tests.conftest import cohort_scenario, scenario_from

COMPARTMENTS = ["in_theatre", "killed", "returned", "detained"]


def total_people(dataset, names):
    return sum(dataset[n].sum([d for d in dataset[n].dims if d not in ("replicate", "time")]) for n in names)


def competing_exits_closed_form(model, months):
    """Derivation: each step a person leaves with p = 1 - exp(-H dt), H = sum of hazards, and takes
    exit k with probability h_k / H. After k steps E[N] = N0 (1-p)^k = N0 exp(-H t) with t = k dt,
    and the expected number that took exit k is N0 h_k/H (1 - exp(-H t))."""
    p = {
        name: float(model.parameters[name].reshape(-1)[0])
        for name in ("death_hazard", "return_hazard", "capture_hazard")
    }
    total = sum(p.values())
    n0 = model.initial_state()[0, : model.layout("in_theatre").size].sum()
    t = np.asarray(months, dtype=float)
    remaining = n0 * np.exp(-total * t)
    left = n0 * (1 - np.exp(-total * t))
    return remaining, {name: left * value / total for name, value in p.items()}


def test_deterministic_reproduces_competing_exits_closed_form(competing_model):
    result = simulate(competing_model, replicates=1, engine="deterministic")
    months = np.arange(result.sizes["time"])
    remaining, exits = competing_exits_closed_form(competing_model, months)
    np.testing.assert_allclose(result["in_theatre_total"].values[0], remaining, rtol=1e-10)
    np.testing.assert_allclose(result["killed_total"].values[0], exits["death_hazard"], rtol=1e-10)
    np.testing.assert_allclose(result["returned_total"].values[0], exits["return_hazard"], rtol=1e-10)


@pytest.mark.slow
def test_stochastic_mean_matches_closed_form(competing_model):
    runs = 3000
    result = simulate(competing_model, replicates=runs, seed=11)
    months = np.arange(result.sizes["time"])
    remaining, exits = competing_exits_closed_form(competing_model, months)
    for name, expected in (
        ("in_theatre_total", remaining),
        ("killed_total", exits["death_hazard"]),
        ("returned_total", exits["return_hazard"]),
    ):
        values = result[name].values
        error = np.abs(values.mean(axis=0) - expected)
        # 5 standard errors: P(|Z| > 5) = 5.7e-7 per date, 3 x 61 dates -> false failure below 1.1e-4
        tolerance = 5 * values.std(axis=0) / np.sqrt(runs) + 1e-9
        assert (error <= tolerance).all(), name


@pytest.mark.slow
def test_deterministic_equals_stochastic_mean_with_inflow_sink_event_schedule():
    model = compile_model(scenario_from(cohort_scenario()))
    expected = simulate(model, replicates=1, engine="deterministic")
    runs = 4000
    result = simulate(model, replicates=runs, seed=5)
    for name in ("active", "gone", "home"):
        values = result[name].values
        mean, spread = values.mean(axis=0), values.std(axis=0)
        error = np.abs(mean - expected[name].values[0])
        # 5 standard errors: 5.7e-7 per cell and date, 5 cells x 25 dates -> false failure below 7.1e-5
        assert (error <= 5 * spread / np.sqrt(runs) + 1e-9).all(), name


@pytest.mark.parametrize("engine", ["stochastic", "deterministic"])
def test_people_are_conserved_with_sources_and_sinks(engine):
    model = compile_model(scenario_from(cohort_scenario()))
    result = simulate(model, replicates=50, seed=2, engine=engine)
    total = total_people(result, ["active", "gone", "home"])
    initial = total.isel(time=0)
    np.testing.assert_allclose(total, initial + result["entered"] - result["exited"], rtol=1e-12)
    assert float(result["entered"].isel(time=-1).min()) > 0
    assert float(result["exited"].isel(time=-1).min()) > 0


def test_stochastic_counts_are_integers_and_non_negative():
    model = compile_model(scenario_from(cohort_scenario()))
    result = simulate(model, replicates=30, seed=3)
    for name in ("active", "gone", "home"):
        assert result[name].dtype == np.int64
        assert int(result[name].min()) >= 0
    # Compartments are cast to int64 on output, so check the float series the engine itself sums:
    # outcomes and the boundary counts are never cast and must hold whole persons too.
    for name in ("active_total", "home_total", "leavers", "entered", "exited"):
        values = result[name].values
        assert values.dtype == np.float64 and np.array_equal(values, np.rint(values)), name
        assert values.min() >= 0, name
    assert np.ptp(result["leavers"].values[:, -1]) > 0, "replicates must differ"


def test_per_month_and_per_year_hazards_give_the_same_result():
    monthly = compile_model(scenario_from(cohort_scenario("month")))
    yearly = compile_model(scenario_from(cohort_scenario("year", scale=12.0)))
    a = simulate(monthly, replicates=1, engine="deterministic")
    b = simulate(yearly, replicates=1, engine="deterministic")
    for name in ("active", "gone", "home"):
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-12)
    c = simulate(monthly, replicates=400, seed=9)
    d = simulate(yearly, replicates=400, seed=9)
    assert np.mean(np.abs(c["active"].values - d["active"].values)) < 0.05


def test_same_seed_same_arrays_different_seed_different_arrays(competing_model):
    a = simulate(competing_model, replicates=40, seed=7)
    b = simulate(competing_model, replicates=40, seed=7)
    c = simulate(competing_model, replicates=40, seed=8)
    for name in COMPARTMENTS:
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert not np.array_equal(a["killed"].values, c["killed"].values)


def test_results_do_not_depend_on_block_size_or_replicate_slices(competing_model):
    whole = simulate(competing_model, replicates=60, seed=4)
    blocked = simulate(competing_model, replicates=60, seed=4, block_size=7)
    tail = simulate(competing_model, replicates=20, seed=4, first_replicate=40)
    for name in COMPARTMENTS:
        np.testing.assert_array_equal(whole[name].values, blocked[name].values)
        np.testing.assert_array_equal(whole[name].values[40:], tail[name].values)
    np.testing.assert_array_equal(tail["replicate"].values, np.arange(40, 60))


@pytest.mark.parametrize("engine", ["stochastic", "deterministic"])
def test_results_do_not_depend_on_the_thread_count(competing_model, engine):
    """The default takes a thread per 16 replicates, up to every core numba has; 1, 2 or 3 threads give the
    same arrays."""
    before = numba.get_num_threads()
    runs = {threads: simulate(competing_model, replicates=70, seed=9, engine=engine, threads=threads, block_size=35)
            for threads in (None, 1, 2, 3)}
    for threads in (1, 2, 3):
        for name in [*COMPARTMENTS, "entered", "exited"]:
            np.testing.assert_array_equal(runs[None][name].values, runs[threads][name].values)
    assert numba.get_num_threads() == before  # simulate puts the thread count back


def test_policy_at_zero_strength_changes_nothing_and_common_numbers_pair_runs(competing_exits):
    baseline = simulate(compile_model(competing_exits), replicates=30, seed=1)
    idle = simulate(compile_model(competing_exits, policies={"border_and_intelligence": 0.0}), replicates=30, seed=1)
    for name in COMPARTMENTS:
        np.testing.assert_array_equal(baseline[name].values, idle[name].values)
    active = simulate(compile_model(competing_exits, policies={"border_and_intelligence": None}), replicates=30, seed=1)
    assert (active["detained"].sum("origin") >= baseline["detained"].sum("origin")).all()
    before = active["time"] < np.datetime64("2015-01")
    np.testing.assert_array_equal(
        active["returned"].values[:, before.values], baseline["returned"].values[:, before.values]
    )
    assert float(active["returned_total"].isel(time=-1).mean()) < float(baseline["returned_total"].isel(time=-1).mean())


def test_intervention_effects_scale_with_strength():
    data = cohort_scenario(
        interventions={
            "slow": {"start": "2015-07", "effects": [{"parameter": "leave", "multiply": 0.5}], "assumption": "test"},
        }
    )
    scenario = scenario_from(data)
    runs = {
        s: simulate(compile_model(scenario, policies={"slow": s}), replicates=1, engine="deterministic")
        for s in (0.0, 0.5, 1.0)
    }
    leavers = [float(runs[s]["leavers"].isel(replicate=0, time=-1)) for s in (0.0, 0.5, 1.0)]
    assert leavers[0] > leavers[1] > leavers[2]


def test_schedule_interpolates_linearly_and_event_moves_its_share():
    model = compile_model(scenario_from(cohort_scenario()))
    assert model.schedules["surge"][0] == 1.0
    assert model.schedules["surge"][6] == pytest.approx(1.5)
    assert model.schedules["surge"][-1] == 2.0
    result = simulate(model, replicates=1, engine="deterministic")
    jump = int(np.flatnonzero(result["time"].values == np.datetime64("2016-01", "ns"))[0])
    without = simulate(compile_model(scenario_from(cohort_scenario(events=[]))), replicates=1, engine="deterministic")
    # Up to the event both runs are the same; the event happens at the start of its month (the recorded
    # month already shows it) and moves exactly `share` = 0.25 of those active just before it.
    active_before_event = without["active_total"].values[0, jump]
    np.testing.assert_array_equal(result["home_total"].values[0, :jump], without["home_total"].values[0, :jump])
    moved = result["home_total"].values[0, jump] - without["home_total"].values[0, jump]
    assert moved == pytest.approx(0.25 * active_before_event, rel=1e-12)
    assert result["active_total"].values[0, jump] == pytest.approx(0.75 * active_before_event, rel=1e-12)


def test_outcome_select_by_and_cumulative(competing_model):
    result = simulate(competing_model, replicates=1, engine="deterministic")
    by_origin = result["returned_by_origin"]
    assert by_origin.dims == ("replicate", "time", "origin")
    np.testing.assert_allclose(by_origin.sum("origin"), result["returned_total"])
    np.testing.assert_allclose(result["returned_women"], result["returned"].sel(cohort="women").sum("origin"))
    monthly = result["returns_per_month"].values[0]
    assert monthly[0] == 0
    np.testing.assert_allclose(np.cumsum(monthly), result["returned_total"].values[0], rtol=1e-9)


def test_negative_rate_is_a_model_error_naming_flow_and_date():
    data = cohort_scenario()
    data["flows"][0]["rate"] = "leave * (1.5 - surge)"
    model = compile_model(scenario_from(data))
    expected = (
        r"'leaving': its rate is -0.0025 in stratum origin=A, 2015-08, replicate 0 \(parameter sample 0\); "
        r"values .*leave=0.03 \(the file's value\), surge=1.58"
    )
    with pytest.raises(ModelError, match=expected):
        simulate(model, replicates=2, engine="deterministic")


def test_parameter_batch_runs_each_row_with_its_own_values(competing_model):
    hazards = np.array([0.05, 0.1, 0.2, 0.4])
    result = simulate(competing_model, replicates=4, engine="deterministic", parameters={"death_hazard": hazards})
    killed = result["killed_total"].isel(time=-1).values
    assert np.all(np.diff(killed) > 0)
    single = simulate(
        compile_model(competing_model.scenario, overrides={"death_hazard": 0.2}), replicates=1, engine="deterministic"
    )
    assert killed[2] == pytest.approx(float(single["killed_total"].isel(replicate=0, time=-1)))


@pytest.mark.parametrize(("step", "months"), [("quarter", 3), ("year", 12)])
def test_quarterly_and_yearly_steps_run_and_summarise(step, months):
    from aftermath.summary import bands, key_dates

    data = cohort_scenario(time={"start": "2015-01", "end": "2017-01", "step": step})
    data["events"] = []
    data["flows"][0]["rate"] = "leave * where(t >= 12, 2, 1)"
    scenario = scenario_from(data)
    result = simulate(compile_model(scenario), replicates=1, engine="deterministic")
    assert result.sizes["time"] == 24 // months + 1
    total = result["active"].sum("origin") + result["gone"].sum("origin") + result["home"]
    np.testing.assert_allclose(total, total.isel(time=0) + result["entered"] - result["exited"])
    table = bands(result, key_dates(scenario))
    assert set(table["date"]) <= {str(t)[:7] for t in result["time"].values}


@pytest.mark.parametrize("engine", ["stochastic", "deterministic"])
@pytest.mark.parametrize("keep", [True, False])
def test_stretches_run_in_one_kernel_call_give_the_step_by_step_numbers(engine, keep):
    """Steps whose rates stay as they are run in one kernel call (kernels.advance_span); a probe makes the
    engine take them one by one (simulate._spans), with the same arrays. The cohort's schedule is held, so
    the stretches are its months before and after the event."""
    data = cohort_scenario(schedules={"surge": {"points": {"2015-01": 1.5}, "assumption": "test"}})
    model = compile_model(scenario_from(data))
    whole = simulate(model, replicates=40, seed=3, engine=engine, keep_compartments=keep)
    stepped = simulate(model, replicates=40, seed=3, engine=engine, keep_compartments=keep,
                       probe=lambda step, rates: None)
    assert set(whole.data_vars) == set(stepped.data_vars)
    for name in whole.data_vars:
        np.testing.assert_array_equal(whole[name].values, stepped[name].values, err_msg=name)


def test_the_deterministic_stretch_kernel_gives_each_replicate_the_numbers_it_has_alone():
    """kernels.expected_span runs LANES replicates side by side, then 8, then one; with rates that differ per
    replicate, every replicate of each kind of block (45 = 32 + 8 + 5) has, bit for bit, the numbers of the engine
    taking the steps one by one, of the replicate run on its own and of any thread count (the cohort with its
    schedule held: stretches before and after the event, an inflow and a sink)."""
    data = cohort_scenario(schedules={"surge": {"points": {"2015-01": 1.5}, "assumption": "test"}})
    model = compile_model(scenario_from(data))
    replicates = LANES + NARROW_LANES + 5
    rng = np.random.default_rng(2)
    parameters = {"leave": rng.uniform(0.01, 0.05, replicates), "die": rng.uniform(0.005, 0.03, (replicates, 2)),
                  "inflow": rng.uniform(5, 40, replicates)}
    whole = simulate(model, replicates, engine="deterministic", parameters=parameters)
    stepped = simulate(model, replicates, engine="deterministic", parameters=parameters,
                       probe=lambda step, rates: None)
    assert len(set(whole["exited"].values[:, -1])) == len(set(whole["entered"].values[:, -1])) == replicates
    for other in (stepped, *(simulate(model, replicates, engine="deterministic", parameters=parameters, threads=threads)
                             for threads in (1, 2, 3))):
        for name in whole.data_vars:
            np.testing.assert_array_equal(whole[name].values, other[name].values, err_msg=name)
    for r in (0, LANES - 1, LANES, LANES + NARROW_LANES - 1, LANES + NARROW_LANES, replicates - 1):
        alone = simulate(model, 1, engine="deterministic", parameters={k: v[r : r + 1] for k, v in parameters.items()})
        for name in whole.data_vars:
            np.testing.assert_array_equal(whole[name].values[r], alone[name].values[0], err_msg=f"{name}, run {r}")


@pytest.mark.parametrize("engine", ["stochastic", "deterministic"])
def test_a_count_past_the_ceiling_inside_a_stretch_is_named_as_step_by_step(engine):
    """A count that passes the ceiling in the middle of a stretch run in one kernel call stops the run with
    the message of the step-by-step engine (the stretch is run again step by step)."""
    data = cohort_scenario(schedules={"surge": {"points": {"2015-01": 1.0}, "assumption": "test"}})
    data["parameters"]["inflow"]["value"] = 2e9
    model = compile_model(scenario_from(data))
    messages = []
    for probe in (None, lambda step, rates: None):
        with pytest.raises(ModelError) as caught:
            simulate(model, replicates=3, engine=engine, probe=probe)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "2015-0" in messages[0] and "2015-01" not in messages[0]

"""Places where a step engine could be off by a little and still look right: the time a sub-step's rates
see, a flow into the very first cell, an event that moves more than there is, malformed per-run
parameters, the memory estimate. Each expected value is worked out by hand in the test's text."""

from __future__ import annotations

import numpy as np
import pytest

from aftermath import compile_model, simulate
from aftermath.errors import ModelError, ResourceError
from tests.conftest import scenario_from

FIXED = {"fixed": "test", "assumption": "test"}


def _ramp(step: str, substeps: int):
    """Recruits arrive at 12 t / 3 persons per month at t months since the start (a rate growing in time)."""
    return compile_model(scenario_from({
        "name": "ramp",
        "title": "an inflow growing in time",
        "time": {"start": "2015-01", "end": "2017-01", "step": step, "substeps": substeps},
        "compartments": {"active": {}},
        "boundaries": {"recruits": {"kind": "source"}},
        "parameters": {"inflow": {"unit": "persons per month", "value": 12.0, **FIXED},
                       "span": {"unit": "months", "value": 3.0, **FIXED}},
        "flows": [{"name": "recruiting", "from": "recruits", "to": "active", "rate": "inflow * t / span"}],
        "outcomes": {"arrivals": {"expr": "recruiting"}, "arrived": {"expr": "recruiting", "cumulative": True}},
    }))


@pytest.mark.parametrize("step, months", [("month", 1.0), ("quarter", 3.0), ("year", 12.0)])
def test_each_sub_step_reads_the_time_at_its_own_start(step: str, months: float) -> None:
    """Sub-step k of the first step starts at t = k / 4 of the step: the step engines add
    4 (rate at t_k) x step / 4 over k = 0..3, i.e. 4 x 0.375 x step^2 / 3 persons; the ODE engine integrates
    4 t / 1 from 0 to the step: 2 step^2 persons."""
    model = _ramp(step, 4)
    first_step = 4.0 * sum(k / 4 * months for k in range(4)) * months / 4
    assert first_step == pytest.approx(4.0 * 0.375 * months**2)
    deterministic = simulate(model, 2, engine="deterministic")
    assert deterministic["active"].values[0, 1] == pytest.approx(first_step, rel=1e-12)
    ode = simulate(model, 1, engine="ode")
    assert ode["active"].values[0, 1] == pytest.approx(2.0 * months**2, rel=1e-6)
    assert (deterministic.attrs["substeps"], ode.attrs["substeps"]) == (4, 0)  # the ODE engine takes no sub-step


def test_flow_outcomes_sum_the_sub_steps_and_accumulate_over_steps() -> None:
    """The ramp with 4 sub-steps a month: 1.5 persons arrive in the first month (see above) and
    4 x 1/4 x (1 + 1.25 + 1.5 + 1.75) = 5.5 in the second. A flow outcome is the step's mean rate (persons
    per month), a cumulative one the persons moved since the start: 0, 1.5, 7."""
    result = simulate(_ramp("month", 4), 2, engine="deterministic")
    np.testing.assert_allclose(result["arrivals"].values[:, 1:3], [[1.5, 5.5]] * 2, rtol=1e-12)
    np.testing.assert_allclose(result["arrived"].values[:, :3], [[0.0, 1.5, 7.0]] * 2, rtol=1e-12, atol=1e-12)


def test_an_inflow_reads_a_compartment_without_exits_at_its_count() -> None:
    """Recruitment at 10% of the present members a month, nobody leaving: the step engines read a cell at its
    mean occupancy over the step, n (1 - e^-H)/H, which is n itself when H = 0: 100 x 1.1^t."""
    model = compile_model(scenario_from({
        "name": "growing",
        "title": "recruitment proportional to the members",
        "time": {"start": "2015-01", "end": "2015-06"},
        "compartments": {"active": {"initial": 100, "assumption": "test"}},
        "boundaries": {"recruits": {"kind": "source"}},
        "parameters": {"growth": {"unit": "per month", "value": 0.1, **FIXED}},
        "flows": [{"name": "recruiting", "from": "recruits", "to": "active", "rate": "growth * active"}],
    }))
    np.testing.assert_allclose(simulate(model, 1, engine="deterministic")["active"].values[0],
                               100 * 1.1 ** np.arange(6), rtol=1e-12)
    assert simulate(model)["active"].sizes["replicate"] == 100  # simulate's default


@pytest.mark.parametrize(("step", "months", "end"), [("month", 1, "2015-12"), ("year", 12, "2019-01")])
@pytest.mark.parametrize("engine", ["stochastic", "deterministic"])
def test_each_strata_arrivals_from_a_source_land_in_that_stratum(engine: str, step: str, months: int, end: str) -> None:
    """Arrivals at 0 a month into stratum A and 20 into B, an empty compartment, no other flow: A stays empty
    and B holds every arrival, 20 a month: exactly in the deterministic engine; in the stochastic one the
    200 runs' total is Poisson(20 x months x 200), within 5 of its standard errors (false failure 5.7e-7)."""
    model = compile_model(scenario_from({
        "name": "arrivals",
        "title": "arrivals into one stratum",
        "time": {"start": "2015-01", "end": end, "step": step},
        "dimensions": {"origin": ["A", "B"]},
        "compartments": {"active": {"dims": ["origin"]}},
        "boundaries": {"recruits": {"kind": "source"}},
        "parameters": {"inflow": {"unit": "persons per month", "dims": ["origin"], "value": {"A": 0, "B": 20},
                                  **FIXED}},
        "flows": [{"name": "recruiting", "from": "recruits", "to": "active", "rate": "inflow"}],
    }))
    runs = 200 if engine == "stochastic" else 2
    result = simulate(model, runs, seed=2, engine=engine, keep_compartments=True)
    active = result["active"]
    assert (active.sel(origin="A") == 0).all()
    np.testing.assert_array_equal(active.sel(origin="B").values, result["entered"].values)
    expected = 20.0 * months * np.arange(model.steps + 1)
    if engine == "deterministic":
        np.testing.assert_allclose(active.sel(origin="B").values, np.broadcast_to(expected, (runs, len(expected))),
                                   rtol=1e-14)
    else:
        total, mean = float(active.sel(origin="B").isel(time=-1).sum()), runs * expected[-1]
        assert abs(total - mean) < 5 * np.sqrt(mean), (total, mean)


def test_a_flow_into_the_first_cell_is_no_exit() -> None:
    """`home` is the model's first cell; 10% a month move there from `away`. Nobody leaves the model."""
    model = compile_model(scenario_from({
        "name": "into_first",
        "title": "a flow into the first cell",
        "time": {"start": "2015-01", "end": "2015-06"},
        "compartments": {"home": {}, "away": {"initial": 1000, "assumption": "test"}},
        "parameters": {"back": {"unit": "per month", "value": 0.1, **FIXED}},
        "flows": [{"name": "returning", "from": "away", "to": "home", "rate": "back"}],
    }))
    for engine in ("deterministic", "stochastic", "ode"):
        result = simulate(model, 2, engine=engine, seed=1)  # type: ignore[arg-type]
        assert (result["exited"].values == 0).all(), engine
        np.testing.assert_allclose(result["home"].values + result["away"].values, 1000.0, rtol=1e-9)
    expected = 1000.0 * (1 - np.exp(-0.1 * np.arange(6)))
    np.testing.assert_allclose(simulate(model, 1, engine="deterministic")["home"].values[0], expected, rtol=1e-12)


def _with_event(fraction: float):
    return compile_model(scenario_from({
        "name": "evented",
        "title": "an event",
        "time": {"start": "2015-01", "end": "2015-06"},
        "compartments": {"held": {"initial": 100, "assumption": "test"}, "released": {}},
        "parameters": {"share": {"unit": "dimensionless", "value": fraction, **FIXED},
                       "rearrest": {"unit": "per month", "value": 0.0, **FIXED}},
        "flows": [{"name": "rearresting", "from": "released", "to": "held", "rate": "rearrest"}],
        "events": [{"name": "amnesty", "date": "2015-03", "from": "held", "to": "released", "fraction": "share"}],
    }))


def test_an_event_into_a_sink_counts_as_exited_in_every_run() -> None:
    """A quarter of both origins' 100 held (200 in all) are deported in 2015-03: exited jumps by 50 in
    each of 3 runs, and stays there."""
    model = compile_model(scenario_from({
        "name": "deported",
        "title": "an event into a sink",
        "time": {"start": "2015-01", "end": "2015-06"},
        "dimensions": {"origin": ["A", "B"]},
        "compartments": {"held": {"dims": ["origin"], "initial": 100, "assumption": "test"},
                         "released": {"dims": ["origin"]}},
        "boundaries": {"abroad": {"kind": "sink"}},
        "parameters": {"rearrest": {"unit": "per month", "value": 0.0, **FIXED}},
        "flows": [{"name": "rearresting", "from": "released", "to": "held", "rate": "rearrest"}],
        "events": [{"name": "deportation", "date": "2015-03", "from": "held", "to": "abroad", "fraction": 0.25,
                    "assumption": "test"}],
    }))
    exited = simulate(model, 3, engine="deterministic")["exited"].values
    np.testing.assert_allclose(exited, [[0, 0, 50, 50, 50, 50]] * 3)


def test_an_event_moves_its_fraction_and_refuses_more_than_everyone() -> None:
    result = simulate(_with_event(0.25), 1, engine="deterministic")
    assert result["released"].values[0, 2] == 25.0 and result["held"].values[0, 2] == 75.0
    for fraction in (1.5, -0.25):
        with pytest.raises(ModelError, match="amnesty"):
            simulate(_with_event(fraction), 1, engine="deterministic")


def test_per_run_values_of_a_stratified_parameter_need_one_column_per_stratum() -> None:
    model = compile_model(scenario_from({
        "name": "strata",
        "title": "a stratified hazard",
        "time": {"start": "2015-01", "end": "2015-06"},
        "dimensions": {"origin": ["A", "B", "C"]},
        "compartments": {"active": {"dims": ["origin"], "initial": 100, "assumption": "test"},
                         "gone": {"dims": ["origin"]}},
        "parameters": {"leave": {"unit": "per month", "dims": ["origin"], "value": 0.1, **FIXED}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
    }))
    good = simulate(model, 2, engine="deterministic", parameters={"leave": np.full((2, 3), 0.2)})
    np.testing.assert_allclose(good["gone"].values[:, 1], 100 * (1 - np.exp(-0.2)), rtol=1e-12)
    for shape in [(2,), (2, 2), (2, 3, 1), (2, 1, 3)]:
        with pytest.raises(ValueError, match=r"expected shape \(runs, 3\)"):
            simulate(model, 2, engine="deterministic", parameters={"leave": np.full(shape, 0.2)})


def test_the_memory_estimate_is_eight_bytes_per_recorded_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ramp model records its outcomes' strata and (kept) its 1 compartment cell at each of its 25 reporting
    points per replicate; the refusal comes exactly above 8 bytes x replicates x points x recorded numbers."""
    import aftermath.resources as resources
    from aftermath.engines.simulate import check_result_memory

    model = _ramp("month", 1)
    recorded = sum(int(np.prod([len(model.dims[d]) for d in o.by])) for o in model.outcomes) + model.cells
    needed = 8.0 * 1000 * (model.steps + 1) * recorded
    monkeypatch.setattr(resources, "physical_memory", lambda: needed)
    check_result_memory(model, 1000, keep_compartments=True)
    monkeypatch.setattr(resources, "physical_memory", lambda: needed - 1)
    with pytest.raises(ResourceError, match="1,000 replicates needs about"):
        check_result_memory(model, 1000, keep_compartments=True)
    check_result_memory(model, 1000, keep_compartments=False)  # without the compartment: 8 x 1000 x 25 fewer
    without = needed - 8.0 * 1000 * (model.steps + 1) * model.cells
    monkeypatch.setattr(resources, "physical_memory", lambda: without)
    check_result_memory(model, 1000, keep_compartments=False)
    monkeypatch.setattr(resources, "physical_memory", lambda: without - 1)
    with pytest.raises(ResourceError, match="1,000 replicates needs about"):
        check_result_memory(model, 1000, keep_compartments=False)


def test_an_outcome_asked_in_another_unit_is_converted() -> None:
    """A steady inflow of 12 persons a month is 144 persons a year: the flow outcome in its declared unit."""
    model = compile_model(scenario_from({
        "name": "steady",
        "title": "a steady inflow",
        "time": {"start": "2015-01", "end": "2015-06"},
        "compartments": {"active": {}},
        "boundaries": {"recruits": {"kind": "source"}},
        "parameters": {"inflow": {"unit": "persons per month", "value": 12.0, **FIXED}},
        "flows": [{"name": "recruiting", "from": "recruits", "to": "active", "rate": "inflow"}],
        "outcomes": {"monthly": {"expr": "recruiting"}, "yearly": {"expr": "recruiting", "unit": "persons per year"}},
    }))
    result = simulate(model, 2, engine="deterministic")
    np.testing.assert_allclose(result["monthly"].values[:, 1:], 12.0, rtol=1e-12)
    np.testing.assert_allclose(result["yearly"].values[:, 1:], 144.0, rtol=1e-12)


@pytest.mark.parametrize("engine", ["deterministic", "stochastic"])
def test_an_infinite_rate_in_an_empty_cell_moves_nobody_and_stops_nothing(engine: str) -> None:
    """A per-capita rate that divides by its own compartment (here 0.5 / staged, staged empty throughout) is
    infinite where nobody is: an invalid rate is an error only in a cell with people in it (kernels.advance),
    so the run goes on, `staged` and `gone` stay empty and `active` loses 1000 (1 - e^-0.2) = 181.27 persons
    in the first month to its own exit (stochastic: 30 runs within 5 standard errors of it, a false failure
    with chance 5.7e-7)."""
    model = compile_model(scenario_from({
        "name": "empty",
        "title": "an infinite rate where nobody is",
        "time": {"start": "2015-01", "end": "2015-06"},
        "compartments": {"active": {"initial": 1000, "assumption": "test"}, "staged": {}, "gone": {},
                         "left": {}},
        "parameters": {"pace": {"unit": "persons per month", "value": 0.5, **FIXED},
                       "leave": {"unit": "per month", "value": 0.2, **FIXED}},
        "flows": [{"name": "moving_on", "from": "staged", "to": "gone", "rate": "pace / staged"},
                  {"name": "leaving", "from": "active", "to": "left", "rate": "leave"}],
    }))
    result = simulate(model, 30, engine=engine, seed=6)
    assert (result["staged"].values == 0).all() and (result["gone"].values == 0).all()
    chance = -np.expm1(-0.2)
    left = result["left"].values[:, 1]
    assert abs(left.mean() - 1000 * chance) <= 5 * np.sqrt(1000 * chance * (1 - chance) / 30) + 1e-9


def test_a_count_may_reach_the_ceiling_but_not_pass_it() -> None:
    """COUNT_CEILING (1e10 persons per cell) is the largest count a run may hold: 8e9 active joined by 2e9
    recruits in a month hold exactly 1e10 (sums of whole numbers below 2^53 are exact), and the run goes on;
    one recruit more and it stops, naming the compartment."""
    from aftermath.engines.diagnose import COUNT_CEILING

    model = compile_model(scenario_from({
        "name": "ceiling",
        "title": "a count at the ceiling",
        "time": {"start": "2015-01", "end": "2015-02"},
        "compartments": {"active": {"initial": 8e9, "assumption": "test"}},
        "boundaries": {"recruits": {"kind": "source"}},
        "parameters": {"inflow": {"unit": "persons per month", "value": 2e9, **FIXED}},
        "flows": [{"name": "recruiting", "from": "recruits", "to": "active", "rate": "inflow"}],
    }))
    assert COUNT_CEILING == 1e10
    np.testing.assert_array_equal(simulate(model, 1, engine="deterministic")["active"].values, [[8e9, 1e10]])
    with pytest.raises(ModelError, match="compartment 'active' holds"):
        simulate(model, 1, engine="deterministic", parameters={"inflow": np.full(1, 2e9 + 1)})


@pytest.mark.parametrize("values, ceiling, expected", [
    ([0.0, 5.0, 1e10], 1e10, -1),  # 0 and the ceiling itself are counts
    ([0.0, 1e10 + 1], 1e10, 1),
    ([1.0, 2.0, np.inf], np.inf, 2),  # with no ceiling (rates), infinity is still no number of persons
    ([3.0, np.nan], np.inf, 1),
    ([-1e-300, 1.0], np.inf, 0),
    ([], 1e10, -1),
])
def test_the_first_invalid_value_is_found_by_its_flat_index(values, ceiling, expected) -> None:
    from aftermath.engines.kernels import first_invalid

    assert first_invalid(np.array(values, dtype=float).reshape(1, -1), ceiling) == expected



def _dying(initial: dict[str, float], inflow: str = "0 * inflow") -> object:
    """One compartment over two strata, a hazard of 0.05 per month to a sink and an inflow from a source;
    cumulative outcomes of what each flow moved."""
    return compile_model(scenario_from({
        "name": "dying",
        "title": "a hazard and an inflow",
        "time": {"start": "2015-01", "end": "2015-12"},
        "dimensions": {"origin": ["A", "B"]},
        "compartments": {"active": {"dims": ["origin"], "initial": initial, "assumption": "test"}},
        "boundaries": {"recruits": {"kind": "source"}, "dead": {"kind": "sink"}},
        "parameters": {"die": {"unit": "per month", "value": 0.05, **FIXED},
                       "inflow": {"unit": "persons per month", "value": 20.0, **FIXED}},
        "flows": [{"name": "dying", "from": "active", "to": "dead", "rate": "die"},
                  {"name": "recruiting", "from": "recruits", "to": "active", "rate": inflow}],
        "outcomes": {"deaths": {"expr": "dying", "cumulative": True},
                     "recruited": {"expr": "recruiting", "cumulative": True}},
    }))


@pytest.mark.parametrize("engine", ["deterministic", "stochastic"])
def test_cells_that_move_no_one_add_nothing_to_the_flow_outcomes(engine: str) -> None:
    """Stratum B is empty all year and the inflow is 0: its cells, and A's in a month when the draw moves
    no one, add exactly 0 to the cumulative deaths, which equal the stock's loss in every run (books that
    balance, whatever the draws)."""
    result = simulate(_dying({"A": 40, "B": 0}), 20, engine=engine, seed=3)
    lost = 40 - result["active"].sum("origin")
    np.testing.assert_allclose(result["deaths"].values, lost.values, atol=1e-9)
    assert (result["recruited"].values == 0).all() and (result["active"].sel(origin="B").values == 0).all()


@pytest.mark.parametrize("engine", ["deterministic", "stochastic"])
@pytest.mark.parametrize(("inflow", "shown"),
                         [("inflow * (0.5 - 1)", "-10"), ("inflow * active / (active - active)", "inf")])
def test_a_negative_or_infinite_inflow_stops_the_run_naming_it(engine: str, inflow: str, shown: str) -> None:
    """An inflow's rate is checked as a hazard's is (kernels.advance): a finite number >= 0, even where the
    compartment it fills is empty."""
    with np.errstate(divide="ignore", invalid="ignore"), pytest.raises(ModelError) as caught:
        simulate(_dying({"A": 40, "B": 0}, inflow), 2, engine=engine, seed=3)
    assert f"flow 'recruiting': its rate is {shown} in stratum origin=A, 2015-01" in str(caught.value)

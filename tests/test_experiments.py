"""Experiments: parameter sampling, member ranges, common random numbers, summaries (in memory, serial).

False-failure budget (a correct model failing with a new seed; the seeds are fixed): the variance split's 4
estimators at 5 SE (2.3e-6); each member's drop in returns under the policy at 10 sd (1e-24); the other
assertions hold for every draw (strata, supports, reproducibility, common random numbers): below 2.4e-6."""

from __future__ import annotations

import copy

import numba
import numpy as np
import pytest
import xarray as xr

from aftermath import resources
from aftermath.errors import ResourceError, ScenarioError
from aftermath.experiments import (
    comparison_table,
    design_experiment,
    paired_differences,
    read_scenario,
    run_experiment,
    sample_draws,
    variance_split,
)
from aftermath.experiments.sampling import draws_from_unit, expand_draws, uncertain_parameters, unit_samples
from aftermath.scenario.validate import TAIL, frozen_distribution
from tests.conftest import cohort_scenario, scenario_from

POLICY = "border_and_intelligence"


@pytest.fixture(scope="module", autouse=True)
def one_kernel_thread():
    """The engine's kernel on one thread in this process: results do not change (executor tests check
    that), and a busy test machine stays usable."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


@pytest.fixture(scope="module")
def competing():
    return read_scenario("competing_exits")


def design(competing, **options):
    text, file, _ = competing
    settings = {"samples": 4, "replicates": 3, "seed": 5, **options}
    return design_experiment(text, file, **settings)


def test_latin_hypercube_puts_one_draw_in_each_stratum_of_every_parameter(competing) -> None:
    scenario = competing[2]
    draws = sample_draws(scenario, 20, "lhs", seed=1)
    assert list(draws) == uncertain_parameters(scenario) == ["cohort_size", "death_hazard", "return_hazard",
                                                              "capture_hazard"]
    for name, values in draws.items():
        cells = np.floor(frozen_distribution(scenario.parameters[name].distribution).cdf(values) * 20).astype(int)
        assert sorted(cells) == list(range(20)), name


def test_sampling_is_reproducible_and_mc_is_an_option(competing) -> None:
    scenario = competing[2]
    first, again = sample_draws(scenario, 8, "lhs", 3), sample_draws(scenario, 8, "lhs", 3)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    other = sample_draws(scenario, 8, "lhs", 4)
    assert not np.array_equal(first["death_hazard"], other["death_hazard"])
    plain = sample_draws(scenario, 400, "mc", 3)["death_hazard"]
    assert plain.min() >= 0.0693 and plain.max() <= 0.0924
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_draws(scenario, 8, "sobol", 3)  # type: ignore[arg-type]


def test_relative_draws_multiply_every_stratum_and_probabilities_stay_in_range(competing) -> None:
    scenario = competing[2]
    arrays = expand_draws(scenario, {"cohort_size": np.array([0.9, 1.1])})
    assert arrays["cohort_size"].shape == (2, 4, 2)
    assert arrays["cohort_size"][0, 0, 0] == pytest.approx(0.9 * 1585)
    assert arrays["cohort_size"][1, 3, 1] == pytest.approx(1.1 * 81)
    data = cohort_scenario()
    share = data["parameters"]["share"]
    share.pop("fixed")
    share["distribution"] = {"type": "uniform", "low": 0.5, "high": 6.0, "relative": True}
    with pytest.raises(ScenarioError, match="not a probability"):  # it could draw shares above 1
        scenario_from(data)
    share["distribution"] = {"type": "uniform", "low": 0.5, "high": 1.5, "relative": True}
    cohort = scenario_from(data)
    expanded = expand_draws(cohort, sample_draws(cohort, 50, "lhs", 0))["share"]
    assert expanded.min() >= 0.125 and expanded.max() <= 1.0


def test_draws_at_the_unit_cube_ends_are_the_quantiles_at_tail_and_one_minus_tail(competing) -> None:
    """death_hazard is triangular(low 0.0693, mode 0.0809, high 0.0924). Its quantile function near the
    ends (the closed form of the triangular distribution): low + sqrt(q (high - low)(mode - low)) and
    high - sqrt((1 - q)(high - low)(high - mode)); at q = TAIL = 2^-52 about 2.4e-10 inside the ends."""
    low, mode, high = 0.0693, 0.0809, 0.0924
    points = np.array([[0.0], [1.0]])
    drawn = draws_from_unit(competing[2], ["death_hazard"], points)["death_hazard"]
    assert TAIL == 2.0**-52
    assert drawn[0] == pytest.approx(low + np.sqrt(TAIL * (high - low) * (mode - low)), rel=1e-12, abs=0)
    assert drawn[1] == pytest.approx(high - np.sqrt(TAIL * (high - low) * (high - mode)), rel=1e-12, abs=0)
    assert low < drawn[0] and drawn[1] < high


def test_draws_of_an_absolute_parameter_are_its_values_and_probabilities_are_clipped(competing) -> None:
    """A distribution without `relative` draws the value itself (not a multiplier of 0.0809); a
    probability drawn or passed outside [0, 1] is held at the nearest end."""
    arrays = expand_draws(competing[2], {"death_hazard": np.array([0.07, 0.09])})
    assert arrays["death_hazard"].tolist() == [0.07, 0.09]
    data = cohort_scenario()
    share = data["parameters"]["share"]
    share.pop("fixed")
    share["distribution"] = {"type": "uniform", "low": 0.0, "high": 1.0}
    shares = expand_draws(scenario_from(data), {"share": np.array([-0.5, 0.25, 1.5])})["share"]
    assert shares.tolist() == [0.0, 0.25, 1.0]


def test_sampling_default_seed_is_zero_and_no_parameters_give_no_columns(competing) -> None:
    scenario = competing[2]
    default, zero = sample_draws(scenario, 6), sample_draws(scenario, 6, seed=0)
    assert all(np.array_equal(default[k], zero[k]) for k in zero)
    for sampler in ("lhs", "mc"):
        assert unit_samples(0, 5, sampler, 0).shape == (5, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("parameters", [0, 4])
def test_sampling_memory_check_counts_three_float_arrays(competing, monkeypatch, parameters) -> None:
    """The draws need three float64 arrays of (samples, parameters): the unit points, their clipped copy
    and the quantiles, 8 * samples * parameters * 3 bytes (one column when no parameter is uncertain).
    A machine with exactly that much memory runs; one byte less refuses."""
    scenario = competing[2] if parameters else scenario_from(cohort_scenario())
    samples = 1000
    needed = 8 * samples * max(parameters, 1) * 3
    monkeypatch.setattr(resources, "physical_memory", lambda: needed)
    assert len(sample_draws(scenario, samples, seed=1)) == parameters
    monkeypatch.setattr(resources, "physical_memory", lambda: needed - 1)
    with pytest.raises(ResourceError, match="1,000 parameter samples"):
        sample_draws(scenario, samples, seed=1)


def test_ranges_cover_every_member_once_and_do_not_change_results(competing) -> None:
    experiment = design(competing, range_size=5)
    assert experiment.ranges() == [(0, 5), (5, 10), (10, 12)]
    whole = run_experiment(design(competing, range_size=12))
    split = run_experiment(experiment)
    for name in whole.series:
        assert np.array_equal(whole.arms["baseline"][name].values, split.arms["baseline"][name].values)
    assert list(split.arms["baseline"]["sample"].values) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_members_of_a_sample_share_its_parameters_and_samples_differ(competing) -> None:
    result = run_experiment(design(competing, samples=3, replicates=4))
    start = result.arms["baseline"]["in_theatre_total"].isel(time=0).values.reshape(3, 4)
    assert (start == start[:, :1]).all(), "the initial cohort is a parameter: equal within a sample"
    assert len(set(start[:, 0])) == 3


def test_arms_are_checked(competing) -> None:
    with pytest.raises(ScenarioError, match="unknown policy"):
        design(competing, arms=[{}, {"no_such_policy": None}])
    with pytest.raises(ScenarioError, match="repeat"):
        design(competing, arms=[{}, {POLICY: None}, {POLICY: None}])


def test_a_policy_at_strength_zero_reproduces_the_baseline_member_by_member(competing) -> None:
    result = run_experiment(design(competing, arms=[{}, {POLICY: 0.0}, {POLICY: None}]))
    baseline, zero, full = result.arms["baseline"], result.arms[f"{POLICY}=0"], result.arms[POLICY]
    for name in result.series:
        assert np.array_equal(baseline[name].values, zero[name].values), name
    # The policy moves returns to detention but keeps the total exit hazard: the total-exit draws and
    # the deaths (their own stream) are the very same numbers; only the returns differ.
    assert np.array_equal(baseline["in_theatre_total"].values, full["in_theatre_total"].values)
    assert np.array_equal(baseline["killed_total"].values, full["killed_total"].values)
    # each member's drop in returns: 599 (sd 58) over 480 members of seeds 0-39 (fewest 447), so 0 is 10.4 sd
    # away: one-sided 1e-25 per member, 1e-24 for the 12
    assert (full["returned_total"].values[:, -1] < baseline["returned_total"].values[:, -1]).all()


def test_comparison_table_has_levels_and_paired_differences(competing) -> None:
    result = run_experiment(design(competing, arms=[{}, {POLICY: None}]))
    difference = paired_differences(result)[POLICY]
    expected = result.arms[POLICY]["returned_total"] - result.arms["baseline"]["returned_total"]
    assert np.array_equal(difference["returned_total"].values, expected.values)
    table = comparison_table(result, ["2016-12"])
    row = table[(table.outcome == "returned_total") & (table.arm == POLICY) & (table.measure == "difference")]
    assert len(row) == 1
    assert row["median"].iloc[0] == pytest.approx(np.median(expected.sel(time="2016-12").values))
    assert set(table["measure"]) == {"level", "difference"}
    assert set(table[table.measure == "level"]["arm"]) == {"baseline", POLICY}


def test_variance_split_recovers_known_components() -> None:
    """S samples of K replicates: x = b + w, b ~ N(0, 3^2) per sample, w ~ N(0, 1) per member, so the
    parametric sd is 3, the stochastic sd 1 and the parametric share 9 / 10 (the one-way random-effects model).

    Tolerances are 5 standard errors of the estimators (normal theory; a 300-seed Monte Carlo at S = 400
    gave 0.108, 0.0117 and 0.0069, these formulas' values there): the stochastic sd from S (K - 1) degrees
    of freedom, SE 1 / sqrt(2 S (K - 1)); the parametric sd from the variance of S sample means,
    SE (9 + 1/K) sqrt(2 / (S - 1)) / (2 * 3); the share by the delta method, SE 0.0069 sqrt(400 / S).
    Two-sided false-failure chance 5.7e-7 per assertion, 4 assertions: 2.3e-6. The seed is fixed."""
    rng = np.random.default_rng(0)
    samples, replicates = 2000, 10
    values = rng.normal(0, 3, (samples, 1)) + rng.normal(0, 1, (samples, replicates))
    members = np.arange(samples * replicates)
    dataset = xr.Dataset(
        {"x": (("replicate", "time"), values.reshape(-1, 1))},
        coords={"replicate": members, "sample": ("replicate", members // replicates),
                "time": np.array(["2017-12"], dtype="datetime64[M]")},
    )
    z = 5.0
    se_stochastic = 1 / np.sqrt(2 * samples * (replicates - 1))
    se_parametric = (9 + 1 / replicates) * np.sqrt(2 / (samples - 1)) / (2 * 3)
    se_share = 0.0069 * np.sqrt(400 / samples)
    split = variance_split(dataset, replicates).iloc[0]
    assert split["parametric_sd"] == pytest.approx(3, abs=z * se_parametric)
    assert split["stochastic_sd"] == pytest.approx(1, abs=z * se_stochastic)
    assert split["parametric_share"] == pytest.approx(0.9, abs=z * se_share)
    incomplete = dataset.isel(replicate=slice(0, samples * replicates - 3))  # the last, incomplete sample is left out
    assert variance_split(incomplete, replicates).iloc[0]["stochastic_sd"] == pytest.approx(
        1, abs=z / np.sqrt(2 * (samples - 1) * (replicates - 1)))


def test_deterministic_engine_runs_one_member_per_sample(competing) -> None:
    experiment = design(competing, engine="deterministic", replicates=7)
    assert experiment.replicates == 1 and experiment.members == 4
    result = run_experiment(experiment)
    assert result.arms["baseline"].sizes["replicate"] == 4


def test_design_does_not_depend_on_other_draw_order(competing) -> None:
    """Draws come from the seed alone, so a stored run's samples can be compared with a fresh design."""
    first = design(competing)
    second = design(competing, arms=[{}, {POLICY: None}])
    assert all(np.array_equal(first.draws[k], second.draws[k]) for k in first.draws)
    assert copy.deepcopy(first.draws).keys() == first.draws.keys()

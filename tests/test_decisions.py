"""Decisions under deep uncertainty: sensitivity against analytic values, PRIM on a known box, the
optimiser on a known optimum, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from aftermath.decisions import (
    ALL_ARMS,
    DecisionError,
    classify,
    discover,
    feature_scores,
    function_sensitivity,
    given_data_sensitivity,
    optimise,
    parse_objective,
    parse_target,
    scenario_sensitivity,
    stored_cases,
    stored_sensitivity,
)
from aftermath.decisions.optimise import PolicyEvaluator, levers, robustness
from aftermath.decisions.sensitivity import analysis_seconds, design, tell_if_slow
from aftermath.experiments import design_experiment, read_scenario
from aftermath.experiments.runner import SERIAL, resume, run_stored
from aftermath.store import Store
from tests.conftest import ROOT

TWO_LEVERS = ROOT / "tests" / "data" / "two_levers.yaml"


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Analytic first and total indices (Ishigami & Homma 1990; Sobol & Levitan 1999)."""
    v1 = 0.5 * (1 + b * np.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * np.pi**8 * (1 / 18 - 1 / 50)
    total = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / total, np.array([v1 + v13, v2, v13]) / total


def test_sobol_matches_the_ishigami_indices_within_their_intervals() -> None:
    """SALib's bootstrap intervals are wide for this design: over 60 seeds the estimates' errors had an sd of
    0.15-0.35 of the interval's half-width / 1.96, so an index falls outside its interval at 5.6 sd or more
    (2e-8 a check, 1e-7 for the six; none of the 360 did)."""
    bounds = {name: (-np.pi, np.pi) for name in ("x1", "x2", "x3")}
    table = function_sensitivity(ishigami, bounds, "sobol", 1024, seed=0)
    first, total = ishigami_indices()
    for index, expected in (("S1", first), ("ST", total)):
        rows = table[table["index"] == index].set_index("parameter")
        for name, value in zip(bounds, expected, strict=True):
            assert rows.loc[name, "low"] <= value <= rows.loc[name, "high"], (index, name, rows.loc[name].to_dict())
    first_order = table[table["index"] == "S1"].set_index("parameter")
    assert not first_order.loc["x3", "significant"], "x3 has no first-order effect"
    assert first_order.loc[["x1", "x2"], "significant"].all()


def test_intervals_do_not_depend_on_numpys_global_state_also_for_seed_zero() -> None:
    """SALib's sobol and delta analysers treat seed 0 as no seed and would resample from numpy's global
    state (seeded afresh by every process); the same design and seed must give the same intervals."""
    bounds = {name: (-np.pi, np.pi) for name in ("x1", "x2", "x3")}
    for method, samples in (("sobol", 64), ("delta", 200)):
        tables = []
        for global_seed in (1, 2):
            np.random.seed(global_seed)
            tables.append(function_sensitivity(ishigami, bounds, method, samples, seed=0))
        assert tables[0].equals(tables[1]), method


def test_a_long_delta_analysis_is_announced_with_its_expected_time() -> None:
    names = [f"p{i}" for i in range(51)]
    heard: list[str] = []
    tell_if_slow(design("delta", names, 1000), 10, heard.append)
    tell_if_slow(design("sobol", names, 64), 10, heard.append)
    tell_if_slow(design("delta", names[:3], 200), 1, heard.append)
    assert len(heard) == 1 and "delta: the analysis takes about 4 min" in heard[0], heard
    assert analysis_seconds(design("delta", names, 1000), 1) == pytest.approx(52 * (0.18 + 0.33), rel=0.01)


def _with_dead_input(x: np.ndarray) -> np.ndarray:
    return 3 * x[:, 0] + x[:, 1] ** 2 + np.sin(3 * x[:, 3])  # x[:, 2] is never read


def test_morris_ranks_a_dead_parameter_last_and_not_significant() -> None:
    bounds = {name: (0.0, 1.0) for name in ("a", "b", "dead", "d")}
    table = function_sensitivity(_with_dead_input, bounds, "morris", 10, seed=3)
    mu_star = table[table["index"] == "mu_star"].sort_values("value", ascending=False)
    assert mu_star["parameter"].iloc[-1] == "dead"
    assert mu_star["parameter"].iloc[0] == "a"
    assert not mu_star.set_index("parameter").loc["dead", "significant"]


def test_given_data_methods_do_not_call_a_dead_parameter_significant() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((400, 4))
    inputs = {name: x[:, i] for i, name in enumerate(("a", "b", "dead", "d"))}
    table = given_data_sensitivity(inputs, _with_dead_input(x)[:, None], ["y"], "rbd-fast")
    rows = table.set_index("parameter")
    assert rows.loc["a", "significant"]
    assert rows.loc["a", "value"] > 0.6
    assert not rows.loc["dead", "significant"]


@pytest.mark.parametrize(
    ("method", "samples", "minimum"),
    [("sobol", 16, "at least 64 base samples"), ("morris", 4, "at least 10 trajectories"),
     ("rbd-fast", 24, "at least 200 parameter samples"), ("delta", 50, "at least 200 parameter samples")],
)
def test_too_small_a_sample_is_refused_with_the_minimum(method: str, samples: int, minimum: str) -> None:
    bounds = {name: (0.0, 1.0) for name in ("a", "b")}
    with pytest.raises(DecisionError, match=minimum):
        function_sensitivity(lambda x: x[:, 0], bounds, method, samples)  # type: ignore[arg-type]


def test_sobol_refuses_a_base_sample_that_is_not_a_power_of_two() -> None:
    with pytest.raises(DecisionError, match="power of two"):
        function_sensitivity(lambda x: x[:, 0], {"a": (0, 1)}, "sobol", 100)


def test_the_old_small_ensemble_case_is_refused() -> None:
    """The issue's case: 24 samples of 51 parameters once gave first-order indices summing far above 1."""
    rng = np.random.default_rng(0)
    inputs = {f"p{i}": rng.random(24) for i in range(51)}
    with pytest.raises(DecisionError, match="at least 200"):
        given_data_sensitivity(inputs, rng.random((24, 1)), ["y"])


def test_scenario_sensitivity_reports_the_unused_parameter_as_zero() -> None:
    text, file, _ = read_scenario(TWO_LEVERS)
    result = scenario_sensitivity(text, file, [parse_target("remaining@2024-12")], "sobol", 64)
    total = result.table[result.table["index"] == "ST"].set_index("parameter")
    assert not total.loc["unused_share", "significant"]
    assert total.loc["unused_share", "value"] == 0.0
    assert total.loc["exit_hazard", "significant"]
    assert total["value"].idxmax() == "exit_hazard"
    assert result.runs == 64 * (3 + 2)


def test_a_design_run_is_stored_resumable_and_recomputed_from_the_store(tmp_path) -> None:
    text, file, _ = read_scenario(TWO_LEVERS)
    store = Store(tmp_path / "runs.duckdb")
    target = [parse_target("remaining@2024-12")]
    in_memory = scenario_sensitivity(text, file, target, "morris", 10, seed=3)

    def stop_after_first_range(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scenario_sensitivity(text, file, target, "morris", 10, seed=3, store=store, progress=stop_after_first_range)
    run = store.run(1)
    assert (run.row["kind"], run.row["sampler"], run.row["status"]) == ("sensitivity", "design", "interrupted")
    assert run.metadata["design"]["method"] == "morris"
    assert run.metadata["design"]["parameters"] == ["start_stock", "exit_hazard", "unused_share"]
    with pytest.raises(DecisionError, match="aftermath resume 1"):
        stored_sensitivity(store, 1, target)
    assert resume(store, 1)
    stored = stored_sensitivity(store, 1, target)
    assert stored.run_id == 1 and stored.runs == in_memory.runs == 10 * 4
    assert np.allclose(stored.table["value"], in_memory.table["value"])
    other = stored_sensitivity(store, 1, [parse_target("left@2021-06")])
    assert set(other.table["date"]) == {"2021-06"}, "any outcome and date, from the stored series"

    heard: list[tuple] = []
    targets = [parse_target(t) for t in ("remaining@2022-12", "left@2023-06", "left@2024-12")]
    stored_sensitivity(store, 1, targets, stage=lambda *told: heard.append(told),
                       progress=lambda done: heard.append(("progress", done)))
    assert heard == [("loading run 1's outcomes", None, ""),
                     ("analysing 40 runs (SALib morris)", 3, "outcome-dates"),
                     ("progress", 1), ("progress", 1), ("progress", 1)], "SALib's analysis: one step per outcome-date"


def test_a_run_without_a_design_is_not_analysed_as_one(tmp_path) -> None:
    text, file, _ = read_scenario(TWO_LEVERS)
    store = Store(tmp_path / "runs.duckdb")
    run_stored(store, design_experiment(text, file, samples=4, replicates=1, engine="deterministic"), "ensemble")
    with pytest.raises(DecisionError, match="not a sensitivity design"):
        stored_sensitivity(store, 1, [parse_target("remaining@2024-12")])


def test_discovery_over_every_arm_finds_a_policy_strength(tmp_path) -> None:
    """Pooled arms: the stock left falls below 1,000 almost only where lever_b is on (it triples the
    exit hazard) and the exit hazard is high, so PRIM's box restricts both."""
    text, file, _ = read_scenario(TWO_LEVERS)
    store = Store(tmp_path / "runs.duckdb")
    arms = [{}, {"lever_a": 1.0}, {"lever_b": 1.0}, {"lever_a": 0.5, "lever_b": 1.0}]
    experiment = design_experiment(text, file, samples=60, replicates=1, arms=arms, engine="deterministic")
    run_id = run_stored(store, experiment, "compare")
    target = [parse_target("remaining@2024-12")]
    cases = stored_cases(store, run_id, target, ALL_ARMS)
    assert cases.values.shape == (240, 1)
    assert cases.inputs["lever_b (strength)"].tolist() == [0.0] * 120 + [1.0] * 120
    assert cases.inputs["lever_a (strength)"].tolist() == [0.0] * 60 + [1.0] * 60 + [0.0] * 60 + [0.5] * 60
    assert np.array_equal(cases.values[120:180], stored_cases(store, run_id, target, "lever_b=1").values)
    found = discover(cases.inputs, classify(cases.values[:, 0], below=1000.0), min_density=0.9)
    limits = found.chosen.limits.set_index("parameter")
    assert limits.loc["lever_b (strength)", "low"] is not None
    assert limits.loc["exit_hazard", "low"] is not None
    assert found.chosen.density >= 0.9


def test_feature_scores_put_the_driver_first_and_noise_below_the_dummy() -> None:
    rng = np.random.default_rng(1)
    inputs = {"driver": rng.random(300), "noise": rng.random(300)}
    y = (5 * inputs["driver"] + 0.05 * rng.standard_normal(300))[:, None]
    table = feature_scores(inputs, y, ["y"])
    assert table["parameter"].iloc[0] == "driver"
    assert not table.set_index("parameter").loc["noise", "above_dummy"]


def test_prim_recovers_a_known_box() -> None:
    """Over 1,000 seeds of these data the chosen box always restricted x0 and x1 only, with density >= 0.9
    (so chosen), coverage >= 0.986 and the quasi-p-value of x0's low side below 1e-15."""
    rng = np.random.default_rng(2)
    x = rng.random((1000, 4))
    inside = (x[:, 0] > 0.2) & (x[:, 0] < 0.6) & (x[:, 1] > 0.5)
    y = np.where(inside, 1.0, 0.0) + 0.01 * rng.standard_normal(1000)
    found = discover({f"x{i}": x[:, i] for i in range(4)}, classify(y, above=0.5), min_density=0.9)
    assert found.chosen.density >= 0.9
    assert found.chosen.coverage >= 0.8
    limits = found.chosen.limits.set_index("parameter")
    assert set(limits.index) == {"x0", "x1"}
    # the box's limits over 1,000 seeds: x0 low 0.192 (sd 0.0068), x0 high 0.605 (sd 0.0071), x1 low 0.487
    # (sd 0.0099, the furthest 4.3 sd off); 0.08 is 6.8 sd or more from each mean (a false failure below 1e-10)
    assert limits.loc["x0", "low"] == pytest.approx(0.2, abs=0.08)
    assert limits.loc["x0", "high"] == pytest.approx(0.6, abs=0.08)
    assert limits.loc["x1", "low"] == pytest.approx(0.5, abs=0.08)
    assert (found.trajectory["coverage"].diff().dropna() <= 1e-12).sum() > 0, "peeling trades coverage for density"
    assert limits.loc["x0", "qp_low"] < 0.05, "a restriction that matters has a small quasi-p-value"
    assert found.cart["density"].iloc[0] >= 0.9


def test_discovery_refuses_too_few_cases_of_interest() -> None:
    x = np.random.default_rng(0).random(200)
    with pytest.raises(DecisionError, match="cases of interest"):
        discover({"x": x}, x > 0.99)


def test_optimiser_finds_the_analytic_best_lever_setting() -> None:
    """max (1 + s_a)(1 + 2 s_b) on s_a + s_b <= 1 is at s_a = 0.25, s_b = 0.75 (see two_levers.yaml)."""
    text, file, _ = read_scenario(TWO_LEVERS)
    objective = parse_objective("remaining@2024-12")
    result = optimise(text, file, [objective], budget=1.0, evaluations=240, population=12, samples=3, seed=1)
    best = result.pareto.iloc[0]
    assert best["cost"] <= 1.0 + 1e-9
    # over 80 seeds the best lever_a was 0.2501 (sd 0.0007, furthest 0.254) and its mean within 2.1e-5 of the
    # analytic optimum's: 0.02 is 27 sd (with 120 evaluations 15% of seeds missed it; hence 240)
    assert best["lever_a"] == pytest.approx(0.25, abs=0.02)
    assert best["lever_b"] == pytest.approx(0.75, abs=0.02)
    evaluator = PolicyEvaluator(text, file, result.levers, [objective], 3, 1, "deterministic", 1, SERIAL, None)
    analytic, corner = evaluator.run(np.array([[0.25, 0.75], [0.0, 1.0]])).mean(axis=(1, 2))
    assert best["remaining@2024-12 mean"] <= analytic * 1.005
    assert best["remaining@2024-12 mean"] < corner, "better than spending the whole budget on the stronger lever"
    baseline = result.evaluated.iloc[0]
    assert baseline["lever_a"] == baseline["lever_b"] == 0.0


def test_robustness_metrics() -> None:
    values = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]])
    assert robustness(values, "mean").tolist() == [2.0, 2.0]
    assert robustness(values, "regret", best=values.min(axis=0)).tolist() == [1.0, 1.0]
    assert robustness(values, "satisficing", threshold=2.0).tolist() == pytest.approx([2 / 3, 1.0])
    assert robustness(values, "p90")[0] == pytest.approx(2.8)


def test_levers_need_a_cost_and_objectives_a_known_outcome() -> None:
    _, _, competing = read_scenario("competing_exits")
    with pytest.raises(DecisionError, match="no intervention with a 'cost'"):
        levers(competing)
    text, file, _ = read_scenario(TWO_LEVERS)
    with pytest.raises(DecisionError, match="no outcome 'nothing'"):
        optimise(text, file, [parse_objective("nothing@2024-12")], budget=1.0, evaluations=20, samples=2)
    with pytest.raises(DecisionError, match="expected OUTCOME@YYYY-MM"):
        parse_target("remaining")

"""aftermath.experiments.design against hand-worked values: range sizes, size limits, arms, kept outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aftermath import resources
from aftermath.errors import ResourceError, ScenarioError
from aftermath.experiments import design_experiment, read_scenario
from aftermath.experiments.design import (
    BASELINE,
    OutcomeChoiceError,
    default_range_size,
    kept_outcomes,
    layout_of,
    make_arm,
    recorded_series,
)
from aftermath.model.compile import compile_model
from aftermath.resources import MAX_MEMBERS
from aftermath.scenario.loader import parse_scenario
from tests.conftest import cohort_scenario
from tests.test_homefront import small_scenario

POLICY = "border_and_intelligence"


@pytest.fixture(scope="module")
def competing():
    return read_scenario("competing_exits")


@pytest.mark.parametrize(("members", "size"), [
    (1, 1), (10, 10), (16, 16), (17, 16), (1000, 16), (1025, 17), (2000, 32), (2048, 32), (16_000, 250), (16_001, 250),
    (100_000, 250),
])
def test_default_range_size_is_about_a_sixty_fourth_within_16_to_250(members: int, size: int) -> None:
    """ceil(members / 64), at least 16 and at most 250, never more than the members: 1025 / 64 = 16.02 -> 17,
    2000 / 64 = 31.25 -> 32, 2048 / 64 = 32 exactly, 16,001 / 64 = 250.02 -> 251 -> 250."""
    assert default_range_size(members) == size


def test_a_design_of_one_sample_and_one_replicate_is_the_smallest(competing) -> None:
    text, file, _ = competing
    smallest = design_experiment(text, file, samples=1, replicates=1)
    assert smallest.members == 1 and smallest.ranges() == [(0, 1)] and smallest.range_size == 1
    for samples, replicates in ((0, 1), (1, 0)):
        with pytest.raises(ValueError, match="at least 1"):
            design_experiment(text, file, samples=samples, replicates=replicates)
    with pytest.raises(ValueError, match="unknown engine"):
        design_experiment(text, file, samples=1, replicates=1, engine="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown sampler"):
        design_experiment(text, file, samples=1, replicates=1, sampler="design")


def test_a_design_takes_its_callers_draws_as_floats_and_the_default_seed_is_zero(competing) -> None:
    text, file, _ = competing
    given = {"death_hazard": [0.07, 0.08, 0.09]}
    experiment = design_experiment(text, file, samples=3, replicates=2, sampler="design", draws=given)
    assert experiment.sampler == "design" and list(experiment.draws) == ["death_hazard"]
    assert experiment.range_size == 6  # the default for 3 x 2 members: ceil(6 / 64) = 1 -> 16, at most 6
    assert experiment.draws["death_hazard"].dtype == np.float64
    assert experiment.draws["death_hazard"].tolist() == [0.07, 0.08, 0.09]
    default, zero = (design_experiment(text, file, samples=3, replicates=2, **seed) for seed in ({}, {"seed": 0}))
    assert default.seed == 0
    assert all(np.array_equal(default.draws[k], zero.draws[k]) for k in zero.draws)
    assert (default.engine, default.sampler, [arm.label for arm in default.arms]) == ("stochastic", "lhs", [BASELINE])


def test_a_run_the_store_cannot_number_is_refused(competing, monkeypatch) -> None:
    """The store numbers members as INTEGER: 2^31 - 1 members pass the count (the memory check is off
    here: the machine's size is unknown), one more is refused."""
    text, file, _ = competing
    monkeypatch.setattr(resources, "physical_memory", lambda: None)
    assert design_experiment(text, file, samples=MAX_MEMBERS, replicates=1, draws={}).members == MAX_MEMBERS
    with pytest.raises(ResourceError, match="2,147,483,648 members"):
        design_experiment(text, file, samples=(MAX_MEMBERS + 1) // 2, replicates=2, draws={})


@pytest.mark.parametrize(("scenario", "arms", "numbers"), [
    ("competing", [{}], 10), ("competing", [{}, {POLICY: None}], 10), ("one total", [{}], 1),
    ("no outcome", [{}], 1)])
def test_the_summary_memory_check_counts_members_arms_key_dates_and_outcome_strata(competing, monkeypatch, scenario,
                                                                                    arms, numbers) -> None:
    """8 bytes per member, arm, key date and outcome stratum. competing_exits: five key dates (none declared:
    2014-01..2018-12 spread in five), seven outcomes of which one by origin (4 strata): 10 numbers. The
    cohort (2015-01..2016-12, five key dates) kept to one total outcome: 1 number; with no outcome, still
    one number (the floor: never a check that passes whatever the size)."""
    if scenario == "competing":
        text, file, _ = competing
    else:
        outcomes = {"home_total": {"expr": "home"}} if scenario == "one total" else {}
        text, file = json.dumps(cohort_scenario(outcomes=outcomes)), "cohort.json"
    samples, replicates = 50, 4
    needed = 8 * samples * replicates * len(arms) * 5 * numbers
    monkeypatch.setattr(resources, "physical_memory", lambda: needed)
    design_experiment(text, file, samples=samples, replicates=replicates, arms=arms)
    monkeypatch.setattr(resources, "physical_memory", lambda: needed - 1)
    with pytest.raises(ResourceError, match=f"the summary of 200 members x {len(arms)} arm"):
        design_experiment(text, file, samples=samples, replicates=replicates, arms=arms)


def test_an_arm_is_labelled_as_asked_and_carries_the_resolved_strengths(competing) -> None:
    scenario = competing[2]
    assert make_arm(scenario, {}).label == BASELINE and make_arm(scenario, {}).policies == {}
    half = make_arm(scenario, {POLICY: 0.25})
    assert half.label == f"{POLICY}=0.25" and half.policies == {POLICY: 0.25}
    full = make_arm(scenario, {POLICY: None})
    assert full.label == POLICY and full.policies == {POLICY: 1.0}


def test_kept_outcomes_follow_the_models_order_and_unknown_names_are_named(competing) -> None:
    model = compile_model(competing[2])
    assert kept_outcomes(model, ["returned_share", "killed_total"]) == ("killed_total", "returned_share")
    with pytest.raises(OutcomeChoiceError) as raised:
        kept_outcomes(model, ["killed_total", "returned_totl", "zzz"])
    # the three closest names to the first unknown one, by difflib's similarity ratio
    assert str(raised.value).startswith("unknown outcome 'returned_totl' (did you mean 'returned_total' or "
                                        "'returned_women' or 'returned_share'?)")
    assert "e.g. in_theatre_total, killed_total, returned_total (" in str(raised.value)
    with pytest.raises(OutcomeChoiceError) as raised:
        kept_outcomes(model, ["zzz"])
    assert "did you mean" not in str(raised.value)
    with pytest.raises(OutcomeChoiceError, match="no outcome named"):
        kept_outcomes(model, [])


def test_arms_that_repeat_one_another_are_refused(competing) -> None:
    text, file, _ = competing
    with pytest.raises(ScenarioError, match="repeat"):
        design_experiment(text, file, samples=1, replicates=1, arms=[{POLICY: 0.5}, {POLICY: 0.5}])


@pytest.mark.parametrize(("step", "months"), [("month", 1), ("quarter", 3), ("year", 12)])
def test_the_layout_has_one_time_per_step_and_the_kept_series(step: str, months: int) -> None:
    """The cohort runs 2015-01..2017-01: 25, 9 or 3 reporting times (numpy's datetime64 arange)."""
    data = cohort_scenario(time={"start": "2015-01", "end": "2017-01", "step": step})
    text = json.dumps(data)
    experiment = design_experiment(text, "cohort.json", samples=1, replicates=1)
    layout = layout_of(experiment)
    expected = np.arange(np.datetime64("2015-01"), np.datetime64("2017-02"), months)
    np.testing.assert_array_equal(layout.times, expected)
    assert layout.step_months == months


def test_a_scenario_file_that_cannot_be_read_is_a_scenario_error(tmp_path, monkeypatch) -> None:
    """Not UTF-8, or unreadable (a permission this test, maybe run as root, can only simulate)."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: Sécurité\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="cannot read the file"):
        read_scenario(path)

    def refused(*_, **__) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", refused)
    with pytest.raises(ScenarioError, match=r"cannot read the file \(\[Errno 13\] Permission denied\)"):
        read_scenario(path)


def test_the_recorded_series_include_the_sub_models_outputs_with_their_strata() -> None:
    """The home front (tests/test_homefront.small_scenario) adds its outputs after the outcomes, e.g. plots
    by origin, perpetrator and result (what becomes of a plot: foiled, failed or completed, as
    docs and aftermath.homefront define it)."""
    model = compile_model(parse_scenario(small_scenario(), "small.yaml"))
    series = recorded_series(model)
    assert list(series)[:7] == [o.name for o in model.outcomes]
    assert [dim for dim, _ in series["home_plots"]] == ["origin", "perpetrator", "result"]
    assert dict(series["home_plots"])["result"] == ["foiled", "failed", "completed"]

"""The sub-model protocol: a new sub-model plugs in by registering, with no change to the core."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import numpy as np
import pytest
from pydantic import Field

import aftermath
from aftermath.errors import ScenarioError
from aftermath.scenario import submodels
from aftermath.scenario.expressions import Symbol
from aftermath.scenario.loader import parse_scenario
from aftermath.scenario.schema import Scenario, Strict
from aftermath.units import DIMENSIONLESS


class Camp(Strict):
    """A toy sub-model: a detention camp that holds a share of would-be returnees back."""

    share: float = Field(ge=0, le=1)


class CampCoupling:
    name = "camp"

    def __init__(self, scenario: Scenario, model: aftermath.CompiledModel) -> None:
        self.share = scenario.camp.share  # type: ignore[attr-defined]
        self.symbols = camp_symbols(scenario)
        self.outputs = {"camp_steps": ()}

    def start(self, replicates: int, first_replicate: int, seed: int, stochastic: bool,
              parameters: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.zeros(replicates)

    def values(self, state: np.ndarray, step: int, parameters: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"camp_open": np.full((1, 1), 1.0 - self.share)}

    def update(self, state: np.ndarray, step: int, environment: object, moved: Mapping[str, np.ndarray]) -> None:
        state += 1

    def record(self, state: np.ndarray) -> dict[str, np.ndarray]:
        return {"camp_steps": state.copy()}


def camp_symbols(scenario: Scenario) -> dict[str, Symbol]:
    return {"camp_open": Symbol("coupling", DIMENSIONLESS)}


def check_camp(scenario: Scenario) -> None:
    if "camp_open" in scenario.parameters:
        raise ScenarioError("the name 'camp_open' is given by the camp", ("camp",))


@pytest.fixture
def camp_registered(monkeypatch):
    submodels.registered()  # import the shipped sub-models first, so they register in the lasting registry
    monkeypatch.setattr(submodels, "_registry", dict(submodels._registry))
    submodels.register(submodels.SubModel("camp", Camp, check_camp, camp_symbols, CampCoupling))
    yield
    submodels.scenario_class.cache_clear()


def competing_exits(rate: str, extra: str = "") -> str:
    text = resources.files("aftermath.scenarios").joinpath("competing_exits.yaml").read_text(encoding="utf-8")
    old = "rate: return_hazard * (1 - border_checks)"
    assert old in text
    return text.replace(old, f"rate: {rate}") + extra


def test_a_registered_sub_model_runs_in_both_engines_without_touching_the_core(camp_registered):
    scenario = parse_scenario(competing_exits("return_hazard * (1 - border_checks) * camp_open", "camp:\n  share: 1\n"))
    model = aftermath.compile_model(scenario)
    for engine in ("stochastic", "deterministic"):
        result = aftermath.simulate(model, replicates=3, seed=2, engine=engine)
        assert result["camp_steps"].attrs["kind"] == "camp"
        np.testing.assert_array_equal(result["camp_steps"].values[0], np.arange(model.steps + 1))
        assert float(result["returned_total"].max()) == 0  # the camp holds everyone back


def test_a_sub_models_section_and_rules_are_checked_like_the_core(camp_registered):
    with pytest.raises(ScenarioError, match=r"camp\.share") as bad:
        parse_scenario(competing_exits("return_hazard", "camp:\n  share: 2\n"), "x.yaml")
    assert bad.value.line is not None
    with pytest.raises(ScenarioError, match="unknown name 'camp_open'"):
        parse_scenario(competing_exits("return_hazard * camp_open"))  # no camp section: no camp_open


def test_a_section_name_can_be_taken_once():
    with pytest.raises(ValueError, match="already taken"):
        submodels.register(submodels.SubModel("flows", Camp, check_camp, camp_symbols, CampCoupling))
    assert [s.name for s in submodels.registered()] == ["home_front", "network"]


def test_cell_sums_sum_each_label_and_count_a_block_without_the_dimension_in_every_row():
    from aftermath.engines.kernels import reduce_columns
    from aftermath.model.coupling import cell_sums, joined_sums

    rng = np.random.default_rng(4)
    dims = ["origin", "cohort"]
    by_origin, broadcast = rng.random((2, 3, 4)), rng.random((2, 1, 4))  # (R, origin, cohort) and no origin
    state = np.concatenate([by_origin.reshape(2, -1), broadcast.reshape(2, -1)], axis=1)
    blocks = [(0, (3, 4)), (12, (1, 4))]
    rows = joined_sums([cell_sums(blocks, dims, "origin", 3), cell_sums(blocks, dims, None)])
    out = np.empty((2, 4))
    reduce_columns(state, *rows, out)
    expected = by_origin.sum(axis=2) + broadcast.sum(axis=(1, 2))[:, None]
    np.testing.assert_allclose(out[:, :3], expected, rtol=1e-14)
    np.testing.assert_allclose(out[:, 3], state.sum(axis=1), rtol=1e-14)


class Witness(Strict):
    """A toy sub-model that only watches: what the engines show a sub-model at each step."""

    watch: bool = True


class WitnessCoupling:
    """Records, at each step's update, the persons the 'returning' flow moved and the in-theatre count at the
    start of the step; keeps the counts array it was shown (a sub-model may keep what it is given)."""

    name = "witness"

    def __init__(self, scenario: Scenario, model: aftermath.CompiledModel) -> None:
        self.symbols: dict[str, Symbol] = {}
        self.outputs = {"seen_returning": (), "seen_in_theatre": ()}
        layout = next(c for c in model.compartments if c.name == "in_theatre")
        self.cells = slice(layout.offset, layout.offset + layout.size)
        self.states: list[dict] = []

    def start(self, replicates: int, first_replicate: int, seed: int, stochastic: bool,
              parameters: Mapping[str, np.ndarray]) -> dict:
        self.states.append({"returning": np.zeros(replicates), "kept": []})
        return self.states[-1]

    def values(self, state: dict, step: int, parameters: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {}

    def update(self, state: dict, step: int, environment, moved: Mapping[str, np.ndarray]) -> None:
        state["returning"] = moved["returning"].reshape(len(state["returning"]), -1).sum(axis=1)
        state["kept"].append(environment.counts)

    def record(self, state: dict) -> dict[str, np.ndarray]:
        kept = state["kept"][-1][:, self.cells].sum(axis=1) if state["kept"] else np.zeros_like(state["returning"])
        return {"seen_returning": state["returning"].copy(), "seen_in_theatre": kept}


@pytest.fixture
def witness_registered(monkeypatch):
    submodels.registered()
    monkeypatch.setattr(submodels, "_registry", dict(submodels._registry))
    submodels.register(submodels.SubModel("witness", Witness, lambda scenario: None, lambda scenario: {},
                                          WitnessCoupling))
    yield
    submodels.scenario_class.cache_clear()


@pytest.mark.parametrize("engine", ["deterministic", "stochastic", "ode"])
def test_a_sub_model_sees_each_steps_moved_persons_and_its_starting_counts(witness_registered, engine):
    """After step s the witness has seen the persons 'returning' moved in it (the model's own record of the
    flow: returns_per_month x the step, one step later) and the in-theatre count at its start (the model's
    in_theatre_total at step s), in every engine; counts it kept are not changed by later steps."""
    model = aftermath.compile_model(parse_scenario(competing_exits("return_hazard * (1 - border_checks)",
                                                                    "witness:\n  watch: true\n")))
    result = aftermath.simulate(model, replicates=3, seed=4, engine=engine)
    moved = result["returns_per_month"].values[:, 1:] * model.dt
    np.testing.assert_allclose(result["seen_returning"].values[:, 1:], moved, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(result["seen_in_theatre"].values[:, 1:], result["in_theatre_total"].values[:, :-1],
                               rtol=1e-12)
    (witness,) = model.couplings
    kept = np.stack([counts[:, witness.cells].sum(axis=1) for counts in witness.states[0]["kept"]], axis=1)
    np.testing.assert_allclose(kept, result["in_theatre_total"].values[:, :-1], rtol=1e-12)

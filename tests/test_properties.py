"""Property tests over randomly generated scenarios: people are conserved in every replicate and step."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftermath import compile_model, simulate
from tests.conftest import scenario_from

DIMENSIONS = {"origin": ["A", "B", "C"], "cohort": ["men", "women"]}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """2-5 compartments with random stratifications, random flows (always to a compartment with a
    subset of the origin's dimensions), optional inflow, sink and event, random hazards and units."""
    count = draw(st.integers(2, 5))
    dims = [draw(st.sampled_from([[], ["origin"], ["cohort"], ["origin", "cohort"]])) for _ in range(count)]
    compartments = {}
    for i, own in enumerate(dims):
        initial = draw(st.integers(0, 3000))
        compartments[f"c{i}"] = {"dims": own, "initial": initial, "assumption": "generated"}
    parameters: dict[str, Any] = {}
    flows = []
    pairs = [(a, b) for a in range(count) for b in range(count) if a != b and set(dims[b]) <= set(dims[a])]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=8, unique=True)) if pairs else []
    for k, (a, b) in enumerate(chosen):
        per = draw(st.sampled_from(["month", "year", "day"]))
        value = draw(st.floats(0.0, 3.0 if per == "year" else 0.4 if per == "month" else 0.02))
        parameters[f"h{k}"] = {"unit": f"per {per}", "value": value, "fixed": "generated", "assumption": "generated"}
        flows.append({"name": f"f{k}", "from": f"c{a}", "to": f"c{b}", "rate": f"h{k}"})
    boundaries: dict[str, Any] = {}
    if draw(st.booleans()) or not flows:
        boundaries["pool"] = {"kind": "source"}
        parameters["inflow"] = {
            "unit": "persons per month",
            "value": draw(st.floats(0, 80)),
            "fixed": "generated",
            "assumption": "generated",
        }
        flows.append({"name": "arrive", "from": "pool", "to": f"c{draw(st.integers(0, count - 1))}", "rate": "inflow"})
    if draw(st.booleans()):
        boundaries["sink"] = {"kind": "sink"}
        parameters["death"] = {
            "unit": "per year",
            "value": draw(st.floats(0, 2)),
            "fixed": "generated",
            "assumption": "generated",
        }
        flows.append({"name": "die", "from": f"c{draw(st.integers(0, count - 1))}", "to": "sink", "rate": "death"})
    events = []
    if draw(st.booleans()):
        a = draw(st.integers(0, count - 1))
        targets = [b for b in range(count) if b != a and set(dims[b]) <= set(dims[a])]
        if targets:
            events.append(
                {
                    "name": "shock",
                    "date": "2020-06",
                    "from": f"c{a}",
                    "to": f"c{draw(st.sampled_from(targets))}",
                    "fraction": draw(st.floats(0, 1)),
                    "assumption": "generated",
                }
            )
    return {
        "name": "generated",
        "title": "generated",
        "time": {"start": "2020-01", "end": "2021-06"},
        "dimensions": DIMENSIONS,
        "compartments": compartments,
        "boundaries": boundaries,
        "parameters": parameters,
        "flows": flows,
        "events": events,
    }


def _totals(result, names) -> np.ndarray:
    return sum(result[n].values.reshape(*result[n].shape[:2], -1).sum(axis=2) for n in names)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**63 - 1))
def test_people_are_conserved_in_every_replicate_and_step(data, seed):
    model = compile_model(scenario_from(data))
    names = list(data["compartments"])
    for engine in ("stochastic", "deterministic"):
        result = simulate(model, replicates=5, seed=seed, engine=engine)
        totals = _totals(result, names)
        expected = totals[:, :1] + result["entered"].values - result["exited"].values
        if engine == "stochastic":
            np.testing.assert_array_equal(totals, expected)
            for name in names:
                assert result[name].values.min() >= 0
        else:
            np.testing.assert_allclose(totals, expected, rtol=1e-9, atol=1e-6)
            for name in names:
                assert result[name].values.min() >= -1e-9

"""The default scenario's departure timelines: a lean moves departures in time, not in total."""

from __future__ import annotations

import numpy as np
import pytest

from aftermath import compile_model, load_scenario, simulate


def test_a_lean_moves_departures_earlier_and_keeps_the_2017_totals() -> None:
    scenario = load_scenario()
    leans = {"early_departures_eu": np.array([0.0, 1.0, 0.0]), "early_departures_other": np.array([0.0, 0.0, -0.5])}
    data = simulate(compile_model(scenario), replicates=3, engine="deterministic", parameters=leans,
                    keep_compartments=False)

    def at(outcome: str, date: str) -> np.ndarray:
        return data[outcome].sel(time=np.datetime64(date, "M")).values.reshape(3, -1).sum(axis=1)

    assert at("arrivals_NL", "2014-12")[1] == pytest.approx(2 * at("arrivals_NL", "2014-12")[0], rel=0.05)
    assert at("arrivals_MA", "2015-01")[2] == pytest.approx(0.5 * at("arrivals_MA", "2015-01")[0], rel=0.05)
    assert at("arrivals_RU", "2014-12")[1] == pytest.approx(at("arrivals_RU", "2014-12")[0], rel=1e-9)
    for outcome in ("arrivals_FR", "arrivals_GB", "arrivals_MA", "arrivals_RU", "arrivals"):
        assert at(outcome, "2017-10") == pytest.approx(at(outcome, "2017-10")[0], rel=0.03), outcome

"""Memory and storage: bands reduced block by block equal the bands of the whole ensemble."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aftermath import compile_model, draw_parameters, load_scenario, simulate, summary
from aftermath.summary import banded_runs, bands, key_dates


@pytest.mark.parametrize("engine", ["stochastic", "deterministic"])
def test_bands_by_block_equal_the_bands_of_the_whole_run(monkeypatch, engine):
    scenario = load_scenario("competing_exits")
    model = compile_model(scenario)
    draws = draw_parameters(scenario, 23, seed=4)
    dates = key_dates(scenario)
    whole = bands(simulate(model, 23, seed=4, engine=engine, parameters=draws, keep_compartments=False), dates)
    numbers = sum(int(np.prod([len(model.dims[d]) for d in o.by])) for o in model.outcomes)
    monkeypatch.setattr(summary, "BLOCK_BYTES", 5 * 8 * (model.steps + 1) * numbers)  # 5 replicates a block
    advanced: list[int] = []
    blocked = banded_runs(model, dates, 23, seed=4, engine=engine, parameters=draws, progress=advanced.append)
    assert len(advanced) > 3 and sum(advanced) == 23
    pd.testing.assert_frame_equal(blocked, whole)


def test_bands_by_block_refuse_a_date_off_the_grid():
    model = compile_model(load_scenario("competing_exits"))
    with pytest.raises(ValueError, match="not a step of this run"):
        banded_runs(model, ["2031-01"], 3, seed=1)

"""aftermath.summary's numbers against hand-worked values: key dates, grids, block sizes, memory, errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from aftermath import compile_model, load_scenario, resources, simulate, summary
from aftermath.errors import ResourceError
from aftermath.summary import at_dates, bands, check_banded_memory, key_dates, recorded_numbers, run_in_blocks
from tests.conftest import cohort_scenario, scenario_from


@pytest.fixture(scope="module")
def competing():
    return compile_model(load_scenario("competing_exits"))


def outcome(times: list[str], replicates: int = 4) -> xr.Dataset:
    """One outcome, value = replicate + 10 * time index, on the given grid."""
    grid = np.array(times, dtype="datetime64[M]").astype("datetime64[ns]")
    values = np.arange(replicates)[:, None] + 10.0 * np.arange(len(times))[None, :]
    data = xr.DataArray(values, dims=("replicate", "time"), coords={"time": grid}, attrs={"kind": "outcome"})
    return xr.Dataset({"count": data})


def test_key_dates_spread_five_steps_evenly_over_the_horizon_worked_by_hand() -> None:
    """2015-01..2016-12 monthly: 23 months, linspace(0, 23, 5) = 0, 5.75, 11.5, 17.25, 23, rounded half to
    even 0, 6, 12, 17, 23. Quarterly to 2017-01: 8 steps, linspace(0, 8, 5) = 0, 2, 4, 6, 8 steps."""
    monthly = scenario_from(cohort_scenario())
    assert key_dates(monthly) == ["2015-01", "2015-07", "2016-01", "2016-06", "2016-12"]
    assert key_dates(monthly, 3) == ["2015-01", "2016-01", "2016-12"]  # 0, 11.5 -> 12, 23
    quarterly = scenario_from(cohort_scenario(time={"start": "2015-01", "end": "2017-01", "step": "quarter"}))
    assert key_dates(quarterly) == ["2015-01", "2015-07", "2016-01", "2016-07", "2017-01"]
    chosen = scenario_from(cohort_scenario(key_dates=["2016-03", "2015-02"]))
    assert key_dates(chosen) == ["2016-03", "2015-02"]


@pytest.mark.parametrize(("times", "grid"), [
    (["2015-01", "2015-04", "2015-07"], "3 steps from 2015-01 to 2015-07, every 3 months"),
    (["2015-01", "2016-01"], "2 steps from 2015-01 to 2016-01, every 12 months"),
    (["2015-01"], "1 steps from 2015-01 to 2015-01, every 1 months"),
])
def test_a_date_off_the_grid_is_named_with_the_grid(times: list[str], grid: str) -> None:
    dataset = outcome(times)
    message = f"the date 2015-02 is not a step of this run; expected a date on its grid ({grid})"
    with pytest.raises(ValueError) as raised:
        bands(dataset, ["2015-01", "2015-02", "2015-03"])
    assert str(raised.value) == message
    with pytest.raises(ValueError) as raised:
        at_dates(dataset, ["2015-02", "2015-03"])
    assert str(raised.value) == message


def test_bands_at_dates_are_numpys_5_50_95_quantiles_once_per_date_in_time_order() -> None:
    dataset = outcome(["2015-01", "2015-04", "2015-07"], replicates=21)
    dataset["twice"] = (2 * dataset["count"]).assign_attrs(kind="outcome")
    table = bands(dataset, ["2015-07", "2015-01", "2015-07"])
    assert table["outcome"].tolist() == ["count", "count", "twice", "twice"]
    assert table["date"].tolist() == ["2015-01", "2015-07"] * 2
    assert table.index.tolist() == [0, 1, 2, 3]
    for row, (factor, index) in zip(table.itertuples(), ((1, 0), (1, 2), (2, 0), (2, 2)), strict=True):
        raw = factor * (np.arange(21) + 10.0 * index)  # the replicates' values at that date, by construction
        assert [row.low, row.median, row.high] == list(np.quantile(raw, [0.05, 0.5, 0.95]))
    assert bands(dataset, outcomes=[]).empty
    kept = at_dates(dataset, ["2015-07", "2015-01"])
    assert kept["time"].dt.strftime("%Y-%m").values.tolist() == ["2015-01", "2015-07"]


def test_banded_memory_counts_eight_bytes_per_replicate_date_and_outcome_stratum(competing, monkeypatch) -> None:
    """competing_exits has seven outcomes, one of them by origin (4 strata): 6 + 4 = 10 numbers a date."""
    replicates, dates = 1000, ["2015-01", "2016-01", "2016-12"]
    needed = 8 * replicates * len(dates) * 10
    monkeypatch.setattr(resources, "physical_memory", lambda: needed)
    assert check_banded_memory(competing, replicates, dates) == 10
    monkeypatch.setattr(resources, "physical_memory", lambda: needed - 1)
    with pytest.raises(ResourceError, match="1,000 replicates"):
        check_banded_memory(competing, replicates, dates)


def test_recorded_numbers_and_time_grid_of_a_quarterly_model_worked_by_hand() -> None:
    """The cohort records its outcomes' strata, no sub-model output and the two boundary counts; its
    quarterly grid is every third month from 2015-01 to 2017-01 (numpy's datetime64 arange)."""
    model = compile_model(scenario_from(cohort_scenario(time={"start": "2015-01", "end": "2017-01",
                                                               "step": "quarter"})))
    strata = sum(int(np.prod([len(model.dims[d]) for d in o.by])) for o in model.outcomes)
    assert not model.couplings
    assert recorded_numbers(model) == strata + 2
    expected = np.arange(np.datetime64("2015-01"), np.datetime64("2017-02"), 3)
    np.testing.assert_array_equal(summary.time_grid(model), expected)
    dataset = simulate(model, replicates=1, engine="deterministic", keep_compartments=False)
    np.testing.assert_array_equal(dataset["time"].values.astype("datetime64[M]"), expected)


@pytest.mark.parametrize(("engine", "budget", "replicates", "blocks"), [
    ("stochastic", 3.0, 7, [3, 3, 1]), ("stochastic", 3.0, 5, [3, 2]), ("stochastic", 2.999, 7, [2, 2, 2, 1]),
    ("stochastic", 0.5, 3, [1, 1, 1]), ("ode", 3.0, 7, [7])])
def test_run_in_blocks_sizes_blocks_by_bytes_and_equals_the_whole_run(competing, monkeypatch, engine, budget,
                                                                      replicates, blocks) -> None:
    """A budget of `budget` replicates' records (8 bytes a number, steps + 1 times) gives blocks of its whole
    part, at least 1 (the ODE engine one block: its adaptive steps depend on the block); each block records
    no compartments, and the joined outcomes equal one whole run's."""
    per_replicate = 8 * (competing.steps + 1) * recorded_numbers(competing)
    monkeypatch.setattr(summary, "BLOCK_BYTES", int(budget * per_replicate))
    seen: list[xr.Dataset] = []

    def keep(block: xr.Dataset) -> dict[str, xr.Dataset]:
        seen.append(block)
        return {"outcomes": block[summary.outcome_names(block)]}

    kept = run_in_blocks(competing, replicates, seed=2, keep=keep, engine=engine)["outcomes"]
    assert [block.sizes["replicate"] for block in seen] == blocks
    assert not any(name in block for block in seen for name in ("in_theatre", "returned"))
    whole = simulate(competing, replicates=replicates, seed=2, engine=engine, keep_compartments=False)
    assert kept["replicate"].values.tolist() == list(range(replicates))
    for name in kept.data_vars:
        np.testing.assert_array_equal(kept[name].values, whole[name].values)

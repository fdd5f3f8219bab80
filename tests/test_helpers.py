"""The one band helper (aftermath.summary) and the one atomic writer (aftermath.files)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aftermath.files import atomic_path, check_output_path, write_text
from aftermath.summary import BAND, band, bands, quantiles


def test_quantiles_are_numpys_bit_for_bit_over_any_axis():
    data = np.random.default_rng(3).gamma(2.0, 50.0, size=(41, 7, 3))
    for axis in range(3):
        expected = np.quantile(data, BAND, axis=axis)
        assert quantiles(data, axis=axis).tobytes() == expected.tobytes()
    column = data[:, 2, 1]
    assert band(column) == tuple(float(q) for q in np.quantile(column, [0.5, BAND[0], BAND[2]]))


def test_quantiles_leave_out_undefined_runs_and_stay_undefined_where_every_run_is():
    data = np.array([[1.0, np.nan, np.nan], [2.0, 5.0, np.nan], [3.0, 7.0, np.nan], [4.0, np.nan, np.nan]])
    with np.errstate(all="ignore"):
        values = quantiles(data, (0.0, 0.5, 1.0))
    np.testing.assert_array_equal(values[:, 0], [1.0, 2.5, 4.0])
    np.testing.assert_array_equal(values[:, 1], [5.0, 6.0, 7.0])
    assert np.isnan(values[:, 2]).all()


def test_band_table_matches_xarray_quantiles():
    rng = np.random.default_rng(5)
    times = pd.date_range("2016-01", periods=3, freq="MS")
    data = xr.DataArray(rng.poisson(30.0, size=(25, 3, 2)).astype(float), dims=("replicate", "time", "origin"),
                        coords={"time": times, "origin": ["FR", "GB"]}, attrs={"kind": "outcome"})
    table = bands(xr.Dataset({"returned": data}), dates=["2016-02"])
    expected = data.sel(time=times[1]).quantile(list(BAND), dim="replicate")
    assert list(table.columns) == ["outcome", "date", "origin", "median", "low", "high"]
    assert table["date"].tolist() == ["2016-02", "2016-02"] and table["origin"].tolist() == ["FR", "GB"]
    np.testing.assert_array_equal(table[["low", "median", "high"]].to_numpy().T, expected.values)


def test_atomic_writes_replace_whole_files_and_leave_nothing_behind(tmp_path):
    target = tmp_path / "out.txt"
    write_text("old", target)
    with pytest.raises(ValueError, match="the writer failed"), atomic_path(target) as partial:
        partial.write_text("half", encoding="utf-8")
        raise ValueError("the writer failed")  # not an I/O failure: it passes through unchanged
    assert target.read_text(encoding="utf-8") == "old"
    write_text("new", target)
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_two_writers_aiming_at_one_file_never_share_a_temporary(tmp_path):
    target = tmp_path / "report.html"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("first", encoding="utf-8")
        second.write_text("second", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "first"  # the last to finish wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_output_paths_are_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"unknown graph format; expected a file ending in \.graphml or \.json"):
        check_output_path(tmp_path / "g.txt", (".graphml", ".json"), "graph")
    with pytest.raises(ValueError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "g.json", (".graphml", ".json"), "graph")

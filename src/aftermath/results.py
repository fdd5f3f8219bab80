"""Writing full results to netCDF or Parquet, atomically: a failed write leaves no file behind."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import xarray as xr

FORMATS = {".nc": "netCDF", ".parquet": "Parquet"}


def check_output_path(path: Path) -> None:
    """Refuse an output path before any work is done, so a long run never ends in a bad path."""
    if path.suffix not in FORMATS:
        raise ValueError(f"{path}: unknown output format; expected a file ending in {' or '.join(FORMATS)}")
    if not path.parent.exists():
        raise ValueError(f"{path}: the folder {path.parent} does not exist")


def long_table(dataset: xr.Dataset) -> pd.DataFrame:
    """Every variable as rows (variable, replicate, time, strata..., value), for Parquet and SQL."""
    frames = []
    for name, variable in dataset.data_vars.items():
        frame = variable.to_dataframe(name="value").reset_index()
        frame.insert(0, "variable", name)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    strata = [c for c in table.columns if c not in ("variable", "replicate", "time", "value")]
    return table[["variable", "replicate", "time", *strata, "value"]]


def write_results(dataset: xr.Dataset, path: str | Path) -> Path:
    """Write to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    check_output_path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        if path.suffix == ".nc":
            dataset.to_netcdf(partial, engine="netcdf4")
        else:
            table = long_table(dataset)
            table.attrs = {}
            table.to_parquet(partial, index=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path

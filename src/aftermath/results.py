"""Writing full results to netCDF or Parquet, atomically: a failed write leaves no file behind."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import xarray as xr

from aftermath import files

FORMATS = {".nc": "netCDF", ".parquet": "Parquet"}


def check_output_path(path: Path) -> None:
    """Refuse an output path before any work is done, so a long run never ends in a bad path (or in a
    format whose optional package is not installed)."""
    files.check_output_path(path, list(FORMATS), "output")
    if path.suffix.lower() == ".nc" and importlib.util.find_spec("netCDF4") is None:
        raise ValueError(
            f"{path}: writing netCDF needs the netCDF4 package (pip install 'aftermath[netcdf]'); "
            "or write a .parquet file"
        )


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


def file_size(size: int) -> str:
    """Bytes for people: '849 MB', '12 kB'."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"


def write_results(dataset: xr.Dataset, path: str | Path) -> Path:
    """Write netCDF or Parquet (by the suffix) atomically (`aftermath.files.atomic_path`); netCDF variables
    are compressed (zlib level 4). Returns the path written."""
    path = Path(path)
    check_output_path(path)
    with files.atomic_path(path) as partial:
        if path.suffix.lower() == ".nc":
            encoding = {name: {"zlib": True, "complevel": 4} for name in dataset.data_vars}
            dataset.to_netcdf(partial, engine="netcdf4", encoding=encoding)
        else:
            table = long_table(dataset)
            table.attrs = {}
            table.to_parquet(partial, index=False)
    return path

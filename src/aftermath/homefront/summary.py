"""The home front's outputs as yearly counts by region, perpetrator and result, with bands.

A plot or arrest recorded at a date happened in the step that ends there (as for the core's flows), so a
calendar year Y gathers the steps that start in Y; only years whose steps are all in the run are kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from aftermath.homefront.schema import PERPETRATORS, RESULTS, HomeFrontSpec, HomeObservation
from aftermath.summary import key_dates, quantiles

PERPETRATOR_TEXT = {"returnee": "operational returnees", "remobilised": "remobilised returnees",
                    "home_grown": "home-grown extremists"}


def home_front_of(scenario: object) -> HomeFrontSpec | None:
    """The scenario's home_front section, or None."""
    return getattr(scenario, "home_front", None)


def home_front_years(scenario: object, spec: HomeFrontSpec) -> list[int]:
    """The years the home front is shown for: those of its observations and of the scenario's key dates."""
    return sorted({o.year for o in spec.observations} | {int(date[:4]) for date in key_dates(scenario)})  # type: ignore[arg-type]


def by_region(data: xr.DataArray, spec: HomeFrontSpec) -> xr.DataArray:
    """`data` summed over the strata of each region: the dimension `spec.dimension` becomes `region`, first."""
    axis = data.get_axis_num(spec.dimension)
    position = {label: i for i, label in enumerate(data[spec.dimension].values.tolist())}
    summed = [np.nansum(np.take(data.values, [position[m] for m in members], axis=axis), axis=axis)
              for members in spec.regions.values()]
    return _like(data, np.stack(summed), ("region", *(d for d in data.dims if d != spec.dimension)),
                 {"region": list(spec.regions)}, dropped=spec.dimension)


def yearly(data: xr.DataArray) -> xr.DataArray:
    """Counts per step (dims replicate, time, ...) summed by the calendar year in which each step starts:
    the dimension `time` becomes `year`, in its place."""
    months = data["time"].values.astype("datetime64[M]").astype(int)
    years = months[:-1] // 12 + 1970
    per_year = 12 // int(months[1] - months[0]) if len(months) > 1 else 1
    complete = [int(y) for y in np.unique(years) if (years == y).sum() == per_year]
    axis = data.get_axis_num("time")
    steps = np.take(data.values, np.arange(1, len(months)), axis=axis)
    sums = [steps.compress(years == year, axis=axis).sum(axis=axis) for year in complete]
    values = np.stack(sums, axis=axis) if sums else np.zeros((*steps.shape[:axis], 0, *steps.shape[axis + 1:]))
    return _like(data, values, tuple("year" if d == "time" else d for d in data.dims),
                 {"year": np.array(complete, dtype=np.int64)}, dropped="time")


def _like(data: xr.DataArray, values: np.ndarray, dims: tuple, new: dict, dropped: str) -> xr.DataArray:
    """A DataArray named as `data`, with its attributes and the coordinates that do not run along the `dropped`
    dimension."""
    kept = {name: coord for name, coord in data.coords.items() if dropped not in coord.dims}
    return xr.DataArray(values, dims=dims, coords={**kept, **new}, name=data.name, attrs=data.attrs)


def counts(dataset: xr.Dataset, spec: HomeFrontSpec, measure: str) -> xr.DataArray:
    """Yearly counts of a measure ('plots', 'completed', 'arrests', or a perpetrator or result) by region:
    dims (replicate, year, region)."""
    if measure == "arrests":
        return yearly(by_region(dataset["home_arrests"], spec))
    plots = dataset["home_plots"]
    if measure in PERPETRATORS:
        plots = plots.sel(perpetrator=[measure])
    elif measure in RESULTS:
        plots = plots.sel(result=[measure])
    elif measure == "completed":
        plots = plots.sel(result=["completed"])
    elif measure != "plots":
        raise ValueError(f"unknown measure {measure!r}")
    return yearly(by_region(plots.sum(["perpetrator", "result"]), spec))


def observed_runs(dataset: xr.Dataset, spec: HomeFrontSpec, observation: HomeObservation) -> np.ndarray:
    """The model's count, one per run, for what an observation measures (its region and year)."""
    data = counts(dataset, spec, observation.measure)
    if observation.year not in data["year"].values:
        raise ValueError(f"the year {observation.year} is not a whole year of this run")
    return data.sel(year=observation.year, region=observation.region).values.reshape(-1)


def row_name(measure: str, group: str, label: str) -> str:
    """A row of the yearly table in words: 'plots, all regions', 'plots: european union', 'plots by
    home-grown extremists', 'plots completed'."""
    text = label.replace("_", " ")
    if group == "all":
        return f"{measure}, all regions"
    if group == "region":
        return f"{measure}: {text}"
    if group == "perpetrator":
        return f"{measure} by {PERPETRATOR_TEXT[label]}"
    return f"{measure} {text}"


def _rows(data: xr.DataArray, measure: str, group: str, label_dim: str | None) -> list[dict[str, object]]:
    levels = quantiles(data.transpose("replicate", "year", *([label_dim] if label_dim else [])).values)
    rows = []
    for index, year in enumerate(data["year"].values):
        labels = data[label_dim].values if label_dim else ["all"]
        for position, label in enumerate(labels):
            cell = (slice(None), index, position) if label_dim else (slice(None), index)
            low, median, high = levels[cell]
            rows.append({"measure": measure, "group": group, "label": str(label), "year": int(year),
                         "median": float(median), "low": float(low), "high": float(high)})
    return rows


def home_front_counts(dataset: xr.Dataset, spec: HomeFrontSpec, years: list[int] | None = None) -> xr.Dataset:
    """The yearly counts behind `home_front_table`, per run (replicate), for `years` (default: every whole
    year): plots and arrests in all regions (dims replicate, year) and by region (+ region), plots by
    perpetrator and by result, and the home-grown population at the end of each year (dim `end_year`:
    only years whose December is in the run). Run by run, so the counts of blocks of runs, joined along
    `replicate`, are those of the whole run."""
    plots = counts(dataset, spec, "plots")
    chosen = [y for y in (years or plots["year"].values.tolist()) if y in plots["year"].values]

    def pick(data: xr.DataArray) -> xr.DataArray:
        return data.sel(year=chosen)

    per_kind = dataset["home_plots"].sum(spec.dimension)
    arrests = counts(dataset, spec, "arrests")
    stock = by_region(dataset["home_grown"], spec)
    months = stock["time"].values.astype("datetime64[M]").astype(int)
    ends = {int(m // 12 + 1970): i for i, m in enumerate(months) if m % 12 == 11}
    kept = [y for y in chosen if y in ends]
    at_end = stock.isel(time=[ends[y] for y in kept]).drop_vars("time").assign_coords(end_year=("time", kept))
    at_end = at_end.swap_dims(time="end_year")
    return xr.Dataset({
        "plots": pick(plots.sum("region")),
        "plots_by_region": pick(plots),
        "plots_by_perpetrator": pick(yearly(per_kind.sum("result"))),
        "plots_by_result": pick(yearly(per_kind.sum("perpetrator"))),
        "arrests": pick(arrests.sum("region")),
        "arrests_by_region": pick(arrests),
        "home_grown": at_end.sum("region"),
        "home_grown_by_region": at_end,
    })


def home_front_bands(counts: xr.Dataset) -> pd.DataFrame:
    """Bands (median, 5-95% over runs) of `home_front_counts`: columns measure, group (region / perpetrator /
    result / all), label, year, median, low, high."""
    home_grown = counts[["home_grown", "home_grown_by_region"]].rename(end_year="year")
    rows = [
        *_rows(counts["plots"], "plots", "all", None),
        *_rows(counts["plots_by_region"], "plots", "region", "region"),
        *_rows(counts["plots_by_perpetrator"], "plots", "perpetrator", "perpetrator"),
        *_rows(counts["plots_by_result"], "plots", "result", "result"),
        *_rows(counts["arrests"], "arrests", "all", None),
        *_rows(counts["arrests_by_region"], "arrests", "region", "region"),
        *_rows(home_grown["home_grown"], "home-grown extremists", "all", None),
        *_rows(home_grown["home_grown_by_region"], "home-grown extremists", "region", "region"),
    ]
    return pd.DataFrame(rows, columns=["measure", "group", "label", "year", "median", "low", "high"])


def home_front_table(dataset: xr.Dataset, spec: HomeFrontSpec, years: list[int] | None = None) -> pd.DataFrame:
    """Bands (median, 5-95% over runs) of yearly counts: plots and arrests by region, plots by perpetrator
    and by result (all regions), and the home-grown population by region at the end of each year.
    Columns: measure, group (region / perpetrator / result / all), label, year, median, low, high."""
    return home_front_bands(home_front_counts(dataset, spec, years))

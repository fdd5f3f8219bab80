"""An experiment's results as xarray Datasets, one per arm, and the summaries analysts read.

Summaries are bands (median and 5-95%): of each arm, of each policy's paired difference from the
baseline (member by member, then quantiles, which common random numbers make tight), and the
split of an ensemble's spread into parametric and stochastic parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from aftermath.experiments.design import Layout
from aftermath.experiments.worker import TaskResult
from aftermath.summary import bands


@dataclass(frozen=True)
class EnsembleResult:
    """Recorded series per arm (the first arm is the reference), members in index order."""

    arms: dict[str, xr.Dataset]
    replicates: int
    """Stochastic replicates per parameter sample."""

    @property
    def reference(self) -> str:
        return next(iter(self.arms))

    @property
    def series(self) -> list[str]:
        return list(self.arms[self.reference].data_vars)


def assemble(
    layout: Layout, labels: Sequence[str], members: np.ndarray, arrays: Sequence[Mapping[str, np.ndarray]],
    replicates: int, times: np.ndarray | None = None,
) -> EnsembleResult:
    """Datasets from per-arm arrays (members, time, *strata) over the given member indices."""
    coords: dict[str, object] = {
        "replicate": members,
        "sample": ("replicate", members // replicates),
        "time": layout.times if times is None else times,
        **layout.dims,
    }
    arms = {
        label: xr.Dataset(
            {
                name: xr.Variable(("replicate", "time", *[d for d, _ in strata]), series[name], {"kind": "outcome"})
                for name, strata in layout.series.items()
            },
            coords=coords,
        )
        for label, series in zip(labels, arrays, strict=True)
    }
    return EnsembleResult(arms, replicates)


def from_ranges(
    layout: Layout, labels: Sequence[str], results: Iterable[TaskResult], replicates: int
) -> EnsembleResult:
    """Join finished ranges in member order (whatever order they finished in)."""
    ordered = sorted(results, key=lambda result: result.first)
    members = np.concatenate([np.arange(r.first, r.last) for r in ordered])
    arrays = [
        {name: np.concatenate([r.series[index][name] for r in ordered]) for name in layout.series}
        for index in range(len(labels))
    ]
    return assemble(layout, labels, members, arrays, replicates)


def band_table(result: EnsembleResult, dates: Sequence[str] | None = None) -> pd.DataFrame:
    """Bands of every arm: one row per arm, outcome, date and stratum."""
    frames = []
    for label, dataset in result.arms.items():
        frame = bands(dataset, dates)
        frame.insert(1, "arm", label)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def paired_differences(result: EnsembleResult) -> dict[str, xr.Dataset]:
    """Each other arm minus the reference, member by member (same seed, same parameters)."""
    reference = result.arms[result.reference]
    return {label: dataset - reference for label, dataset in result.arms.items() if label != result.reference}


def comparison_table(result: EnsembleResult, dates: Sequence[str] | None = None) -> pd.DataFrame:
    """Per outcome, date and stratum: each arm's band ('level') and each policy's paired difference band."""
    levels = band_table(result, dates)
    levels.insert(2, "measure", "level")
    frames = [levels]
    for label, difference in paired_differences(result).items():
        frame = bands(difference, dates, outcomes=result.series)
        frame.insert(1, "arm", label)
        frame.insert(2, "measure", "difference")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def variance_split(dataset: xr.Dataset, replicates: int, dates: Sequence[str] | None = None) -> pd.DataFrame:
    """How much of the spread comes from parameter uncertainty and how much from chance.

    With S samples of K replicates: stochastic = mean within-sample variance; parametric = variance
    of the sample means less the noise they still carry (stochastic / K), floored at 0 (the one-way
    random-effects estimate). Needs K >= 2 for the stochastic part and S >= 2 for the parametric one;
    only complete samples count.
    """
    frames = []
    selected = dataset if dates is None else dataset.sel(time=_times(dataset, dates))
    ids, counts = np.unique(selected["sample"].values, return_counts=True)
    complete = np.isin(selected["sample"].values, ids[counts == replicates])
    samples = int(complete.sum()) // replicates
    for name in dataset.data_vars:
        data = selected[name]
        grouped = data.values[complete].reshape(samples, replicates, *data.shape[1:])
        with np.errstate(invalid="ignore", divide="ignore"):
            stochastic = grouped.var(axis=1, ddof=1).mean(axis=0) if replicates > 1 else np.full(data.shape[1:], np.nan)
            between = grouped.mean(axis=1).var(axis=0, ddof=1) if samples > 1 else np.full(data.shape[1:], np.nan)
            parametric = np.maximum(between - np.nan_to_num(stochastic) / replicates, 0.0)
            share = parametric / (parametric + stochastic)
        parts = xr.Dataset(
            {
                "parametric_sd": (data.dims[1:], np.sqrt(parametric)),
                "stochastic_sd": (data.dims[1:], np.sqrt(stochastic)),
                "parametric_share": (data.dims[1:], share),
            },
            coords={dim: data[dim] for dim in data.dims[1:]},
        )
        frame = parts.to_dataframe().reset_index()
        frame.insert(0, "outcome", name)
        frame["date"] = pd.to_datetime(frame.pop("time")).dt.strftime("%Y-%m")
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    front = ["outcome", "date"]
    return table[[*front, *[c for c in table.columns if c not in front]]]


def _times(dataset: xr.Dataset, dates: Sequence[str]) -> np.ndarray:
    return np.array([np.datetime64(d, "M") for d in dates]).astype(dataset["time"].values.dtype)

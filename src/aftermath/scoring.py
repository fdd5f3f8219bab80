"""Proper scores of forecasts against observations: coverage, CRPS, log score, interval score, PIT.

A forecast of an observation is an ensemble of predictive samples (what a report would say: the model's
value with the observation error drawn around it), shape (samples,). Each observation is scored by its
kind (the observation model's kinds: point, range, at_least, up_to):

- a *point* or two-sided *range* is scored at its reported value: whether it lies in the central 50% and
  90% predictive intervals (coverage), the CRPS of the ensemble (scoringrules.crps_ensemble, the "fair"
  quantile-decomposition estimator), the log score of a Gaussian kernel density of the ensemble
  (scoringrules.logs_ensemble, Silverman's bandwidth), the interval scores of the 50% and 90% intervals
  (Gneiting & Raftery 2007, eq. 43; scoringrules.interval_score) and its probability integral transform
  (PIT, the share of the ensemble below the value, ties counted half);
- a one-sided *bound* ("at least L", "up to U") is censored: it gets the censored log score
  -log P(Y meets the bound) (the ensemble's share meeting it, add-one smoothed so it stays finite) and
  whether the 90% interval meets it; it is not counted in coverage, since a bound cannot be "inside";
- a *vacuous* range (it starts at 0 or spans an order of magnitude: `fitcheck.is_vacuous`) is scored as
  such: no coverage, no score, only whether the 90% interval overlaps it (if not, it is still a miss).

CRPS, log score and interval scores are computed on log(1 + x), so a 20% error weighs the same for a
count of 500 and of 40,000 (as ViEWS scores log fatalities); shares and ratios below 1 are then scored
nearly on their own scale. Lower scores are better for all of them.

scoringrules compiles its kernels with numba on import (seconds): it is imported inside the functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aftermath.fitcheck import is_vacuous
from aftermath.summary import quantiles

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
"""Predictive quantiles used: the 90% and 50% central intervals and the median."""
NOMINAL = {"50%": 0.5, "90%": 0.9}
PIT_BINS = 10
BOUND_KINDS = ("at_least", "up_to")


@dataclass(frozen=True)
class Target:
    """An observation to forecast: `lower`/`upper` are the bounds its kind places the truth in
    (0 below an 'up_to', infinity above an 'at_least'; both the value for a point)."""

    outcome: str
    date: str
    source: str
    kind: str
    value: float
    lower: float
    upper: float

    @property
    def vacuous(self) -> bool:
        return self.kind not in BOUND_KINDS and self.lower != self.upper and is_vacuous(self.lower, self.upper)

    @property
    def scored_as(self) -> str:
        """'value' (point or range: scored at its value), 'bound' or 'vacuous'."""
        if self.vacuous:
            return "vacuous"
        return "bound" if self.kind in BOUND_KINDS else "value"


@dataclass(frozen=True)
class Score:
    """One target scored by one forecast. Scores that do not apply to the target's kind are None.

    `median`, `low90`, `high90` are the predictive median and 90% interval, in the outcome's unit.
    """

    target: Target
    forecast: str
    median: float
    low90: float
    high90: float
    covered50: bool | None = None
    covered90: bool | None = None
    crps: float | None = None
    log_score: float | None = None
    interval50: float | None = None
    interval90: float | None = None
    pit: float | None = None
    consistent: bool | None = None
    """For bounds and vacuous ranges: the 90% interval meets the bound (overlaps the range)."""

    def as_dict(self) -> dict[str, object]:
        row = asdict(self)
        target = row.pop("target")
        return {**target, "scored_as": self.target.scored_as, **row}


def _log_scale(x: np.ndarray | float) -> np.ndarray:
    return np.log1p(np.maximum(np.asarray(x, dtype=float), 0.0))


def score_ensemble(target: Target, samples: np.ndarray, forecast: str) -> Score:
    """Score one target by a predictive ensemble `samples` (samples,) in the outcome's unit.

    Raises ValueError for an empty ensemble or one with a value that is not finite.
    """
    samples = np.asarray(samples, dtype=float).reshape(-1)
    if samples.size == 0 or not np.isfinite(samples).all():
        raise ValueError(f"the forecast {forecast!r} of {target.outcome} at {target.date} has no finite samples")
    q05, q25, q50, q75, q95 = (float(q) for q in quantiles(samples, LEVELS))
    base = {"target": target, "forecast": forecast, "median": q50, "low90": q05, "high90": q95}
    kind = target.scored_as
    if kind == "vacuous":
        return Score(**base, consistent=bool(q05 <= target.upper and target.lower <= q95))
    if kind == "bound":
        met = (samples >= target.lower) & (samples <= target.upper)
        share = (met.sum() + 1.0) / (samples.size + 2.0)
        return Score(**base, log_score=float(-np.log(share)),
                     consistent=bool(q05 <= target.upper and target.lower <= q95))
    import scoringrules as sr

    y, ensemble = _log_scale(target.value), _log_scale(samples)
    interval = [float(sr.interval_score(y, _log_scale(low), _log_scale(high), alpha, backend="numpy"))
                for low, high, alpha in ((q25, q75, 0.5), (q05, q95, 0.1))]
    spread = float(np.std(ensemble))
    bandwidth = None if spread > 0 else 0.01  # a one-valued ensemble: a 1% kernel, not a division by 0
    return Score(
        **base,
        covered50=bool(q25 <= target.value <= q75),
        covered90=bool(q05 <= target.value <= q95),
        crps=float(sr.crps_ensemble(y, ensemble, estimator="fair", backend="numpy")),
        log_score=float(sr.logs_ensemble(y, ensemble, bw=bandwidth, backend="numpy")),
        interval50=interval[0],
        interval90=interval[1],
        pit=float(((samples < target.value).sum() + 0.5 * (samples == target.value).sum()) / samples.size),
    )


@dataclass(frozen=True)
class Coverage:
    """Share of scored targets inside the central interval, with the range a calibrated forecast gives
    95% of the time for these targets (`calibrated_range`: binomial when each target is a different figure)."""

    level: str
    nominal: float
    targets: int
    inside: int
    expected_low: float
    expected_high: float

    @property
    def share(self) -> float:
        return self.inside / self.targets if self.targets else float("nan")

    @property
    def within_sampling_error(self) -> bool:
        return bool(self.targets and self.expected_low <= self.share <= self.expected_high)


@dataclass(frozen=True)
class Summary:
    """The scores of one forecast over its targets: counts by how they were scored, coverage of the 50%
    and 90% intervals, mean CRPS, log score and interval scores (of targets scored at their value), the
    PIT histogram (PIT_BINS equal bins on [0, 1]), and bounds and vacuous ranges met."""

    forecast: str
    targets: int
    scored: int
    bounds: int
    bounds_met: int
    vacuous: int
    vacuous_overlapping: int
    coverage: dict[str, Coverage]
    crps: float
    log_score: float
    interval50: float
    interval90: float
    pit_histogram: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        row = asdict(self)
        row["coverage"] = {
            level: {**asdict(c), "share": c.share, "within_sampling_error": c.within_sampling_error}
            for level, c in self.coverage.items()
        }
        return row


def calibrated_range(nominal: float, repeats: Sequence[int], mass: float = 0.95) -> tuple[int, int]:
    """The central `mass` range of the count of targets inside a calibrated forecast's `nominal` interval, when
    figure j is scored `repeats[j]` times (from that many cutoffs): (low, high) counts, as scipy.stats'
    `binom.interval` gives them (and equal to it when every figure is scored once).

    A figure has one reported value, so the forecasts of it from several cutoffs hit or miss together at the
    worst: the count is taken as sum_j repeats[j] B_j, B_j independent Bernoulli(nominal) (its exact
    distribution, by convolution). Scoring a figure from three cutoffs is not three independent trials; this
    range is the widest such dependence allows, the binomial of all scores the narrowest.
    """
    total = int(sum(repeats))
    distribution = np.zeros(total + 1)
    distribution[0] = 1.0
    for weight in repeats:
        distribution[weight:] = distribution[weight:] * (1 - nominal) + distribution[:-weight] * nominal
        distribution[:weight] *= 1 - nominal
    cumulative = np.cumsum(distribution)
    tail = (1 - mass) / 2
    # the smallest counts whose cumulative probability reaches each tail, with binom.ppf's tolerance for rounding
    low, high = (int(np.searchsorted(cumulative, q * (1 - 1e-12))) for q in (tail, 1 - tail))
    return low, min(high, total)


def coverage(level: str, flags: Sequence[bool], figures: Sequence[Hashable] | None = None) -> Coverage:
    """Coverage of the central `level` interval ('50%' or '90%') from per-target inside flags; `figures` names
    each target's figure, so one scored from several cutoffs counts once in the range (`calibrated_range`)."""
    nominal, n = NOMINAL[level], len(flags)
    if not n:
        return Coverage(level, nominal, 0, 0, 0.0, 0.0)
    low, high = calibrated_range(nominal, list(Counter(figures).values()) if figures is not None else [1] * n)
    return Coverage(level, nominal, n, int(sum(flags)), low / n, high / n)


def summarise(scores: Sequence[Score], forecast: str) -> Summary:
    """Aggregate one forecast's scores (those whose `forecast` is `forecast`)."""
    mine = [s for s in scores if s.forecast == forecast]
    full = [s for s in mine if s.target.scored_as == "value"]
    bounds = [s for s in mine if s.target.scored_as == "bound"]
    vacuous = [s for s in mine if s.target.scored_as == "vacuous"]

    def mean(name: str) -> float:
        values = [getattr(s, name) for s in full]
        return float(np.mean(values)) if values else float("nan")

    pits = [s.pit for s in full]
    histogram = np.histogram(pits, bins=PIT_BINS, range=(0.0, 1.0))[0] if pits else np.zeros(PIT_BINS, int)
    return Summary(
        forecast=forecast,
        targets=len(mine),
        scored=len(full),
        bounds=len(bounds),
        bounds_met=sum(bool(s.consistent) for s in bounds),
        vacuous=len(vacuous),
        vacuous_overlapping=sum(bool(s.consistent) for s in vacuous),
        coverage={level: coverage(level, [bool(getattr(s, f"covered{level[:-1]}")) for s in full],
                                  [s.target for s in full]) for level in NOMINAL},
        crps=mean("crps"),
        log_score=mean("log_score"),
        interval50=mean("interval50"),
        interval90=mean("interval90"),
        pit_histogram=[int(c) for c in histogram],
    )


SCORE_HEAD = ["cutoff", "forecast", "scored", "50% coverage", "90% coverage", "CRPS", "log score",
              "interval score 90%", "bounds met", "vacuous", "PIT histogram (10 bins)"]
SCORE_NOTE = (
    "Coverage: share of the observations scored at their value inside the predictive interval, with the range "
    "a calibrated forecast gives 95% of the time ('!' outside it; pooled, a figure forecast from several cutoffs "
    "is one figure, hit or missed from each). CRPS, log and interval scores on log(1 + x), "
    "lower is better. Bounds ('at least', 'up to') are censored and not counted in coverage; vacuous ranges "
    "(from 0, or spanning 10x) are not scored."
)


def score_row(label: str, summary: Mapping[str, Any]) -> list[str]:
    """One row of SCORE_HEAD from a summary as JSON (`Summary.as_dict`): the terminal's and the report's."""

    def cover(level: str) -> str:
        c = summary["coverage"][level]
        if not c["targets"]:
            return "-"
        flag = "" if c["within_sampling_error"] else " !"
        expected = f"{c['expected_low']:.0%}-{c['expected_high']:.0%}"
        return f"{c['share']:.0%} ({c['inside']}/{c['targets']}; {expected}){flag}"

    def number(value: float) -> str:
        return "-" if value is None or value != value else f"{value:.3f}"

    return [label, summary["forecast"], str(summary["scored"]), cover("50%"), cover("90%"), number(summary["crps"]),
            number(summary["log_score"]), number(summary["interval90"]),
            f"{summary['bounds_met']}/{summary['bounds']}", str(summary["vacuous"]),
            " ".join(str(c) for c in summary["pit_histogram"])]


def score_rows(payload: Mapping[str, Any]) -> list[list[str]]:
    """The rows of a backtest payload: each cutoff's forecasts, then all cutoffs pooled."""
    rows = [score_row(fold["cutoff"], summary) for fold in payload["folds"] for summary in fold["summaries"].values()]
    return rows + [score_row("all", summary) for summary in payload["pooled"].values()]

"""Observations against the model: each observation's interval beside the model's band at its date.

Observations dated up to the end of the fitted window (December 2017 for the default scenario) are
in-sample: the scenario was fitted to them. Later ones are out-of-sample: they check forecasts and
were never used to fit. Per observation:

- a *verdict*: `miss` when the observation's interval [low, high] and the model's 5-95% band do not
  overlap; otherwise `vacuous` when the interval could hardly have been missed (it starts at 0, or its
  high end is at least VACUOUS_RATIO times its low end), `bound` for a one-sided figure ("at least",
  "up to") the band does not contradict, and `hit` for a point or a two-sided range. Only hits count as
  hits: "0-4,000" around a band of 200-450 says nothing about the model;
- the *distance* of the reported value from the band: the log of the ratio of the value to the nearest
  band edge (0 inside the band; +log 10 is a value ten times above the band's high end);
- *within tolerance*: the model's median lies within a relative tolerance of that interval, the
  tolerance set by the confidence the evidence gives the figure (H 20%, M 35%, L 50%), since a
  figure the sources disagree on cannot be held to the precision of a well-measured one. A vacuous
  interval is never within tolerance.

A missing `low` or `high` is the value itself: "over 40,000" is held to 40,000, not to anything above,
unless the observation's `kind` says it is a bound: an 'at_least' figure's interval is [low, inf), an
'up_to' figure's [0, high] (censored data: an "up to" figure above the band is no miss).

The model's band here is the *predictive* band: the model's value with each observation's error
drawn around it (what a report would say; see aftermath.inference.observation); the *latent* band
(the model's state) is kept beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import xarray as xr

from aftermath.engines.simulate import Engine, simulate
from aftermath.experiments.sampling import per_run_parameters
from aftermath.formatting import Kind
from aftermath.homefront.summary import home_front_of, observed_runs
from aftermath.inference.observation import predictive_draws
from aftermath.model.compile import compile_model, stable_id
from aftermath.scenario.describe import outcome_kind, outcome_label
from aftermath.scenario.evidence import figures
from aftermath.scenario.observation_model import error_of
from aftermath.scenario.schema import Scenario, month_label, parse_month
from aftermath.summary import band

if TYPE_CHECKING:
    from aftermath.inference.calibration import Posterior

FIT_END = "2017-12"
"""End of the default scenario's fitted window (DESIGN principle 7)."""
TOLERANCE = {"H": 0.20, "M": 0.35, "L": 0.50}
"""Relative tolerance of the model's median by the evidence's confidence in the figure."""
DEFAULT_TOLERANCE = TOLERANCE["M"]
_PREDICTIVE_STREAM = stable_id("predictive observation errors")
"""For observations whose source is not a graded figure of the evidence."""
VACUOUS_RATIO = 10.0
"""An interval whose high end is this many times its low end (or more) spans an order of magnitude:
vacuous as a check of a model whose band is inside it."""
Verdict = Literal["hit", "miss", "vacuous", "bound"]
SUMMARY_KEYS: dict[str, Verdict] = {"hits": "hit", "misses": "miss", "vacuous": "vacuous", "bounds": "bound"}
_TINY = 1e-12
"""Floor of values in log ratios (counts and shares are >= 0; a zero band edge is 'below anything')."""


def log_ratio(value: float, low: float, high: float) -> float:
    """log(value / nearest edge of [low, high]): 0 inside, > 0 above the high end, < 0 below the low end.
    Values and edges are floored at 1e-12 so zeros give large finite ratios."""
    if value > high:
        return float(np.log(max(value, _TINY) / max(high, _TINY)))
    if value < low:
        return float(np.log(max(value, _TINY) / max(low, _TINY)))
    return 0.0


def is_vacuous(low: float, high: float) -> bool:
    """True for an interval of a non-negative quantity that starts at 0 or spans VACUOUS_RATIO or more."""
    return bool(low <= 0 or high >= VACUOUS_RATIO * low)


@dataclass(frozen=True)
class ObservationCheck:
    """One observation set against the model at its date."""

    outcome: str
    date: str
    value: float
    low: float
    high: float
    source: str
    note: str
    in_sample: bool
    tolerance: float
    median: float
    band_low: float
    band_high: float
    """The predictive band (median, 5-95%): what a report would say, with the observation's error."""
    latent_median: float
    latent_low: float
    latent_high: float
    """The latent band: the model's outcome itself."""
    kind: str = "point"
    """'point', 'range', 'at_least' or 'up_to' (one-sided: low or high is the figure's only bound)."""
    label: str = ""
    """What the outcome is called for a reader (the scenario's label); empty: its name."""
    quantity: Kind = "count"
    """How its numbers read: 'count', 'share' or 'number' (`scenario.describe.outcome_kind`)."""

    @property
    def in_band(self) -> bool:
        """The observation's interval overlaps the model's band (a verdict of hit, vacuous or bound)."""
        return bool(self.band_low <= self.high and self.low <= self.band_high)

    @property
    def vacuous(self) -> bool:
        """A two-sided interval that starts at 0 or spans an order of magnitude (see `is_vacuous`)."""
        return self.kind not in ("at_least", "up_to") and is_vacuous(self.low, self.high)

    @property
    def verdict(self) -> Verdict:
        """miss, vacuous, bound or hit (the module's docstring)."""
        if not self.in_band:
            return "miss"
        if self.vacuous:
            return "vacuous"
        return "bound" if self.kind in ("at_least", "up_to") else "hit"

    @property
    def distance(self) -> float:
        """log(value / nearest band edge): 0 when the reported value lies in the band (see `log_ratio`)."""
        return log_ratio(self.value, self.band_low, self.band_high)

    @property
    def error(self) -> float:
        """Distance from the model's latent median (its central value, without observation error) to the
        observation's interval, relative to the value; the tolerance test of the fitted window uses it."""
        gap = max(self.low - self.latent_median, self.latent_median - self.high, 0.0)
        return gap / abs(self.value) if self.value else gap

    @property
    def within_tolerance(self) -> bool:
        return bool(not self.vacuous and self.error <= self.tolerance)

    def as_dict(self) -> dict[str, object]:
        """The check as JSON-ready values; an open bound (an 'at_least' figure's high) is None."""
        fields = {k: None if isinstance(v, float) and math.isinf(v) else v for k, v in asdict(self).items()}
        return {**fields, "in_band": self.in_band, "verdict": self.verdict, "vacuous": self.vacuous,
                "distance": self.distance, "error": self.error, "within_tolerance": self.within_tolerance}


def tolerance_for(source: str) -> float:
    """The relative tolerance for a figure, by the confidence the evidence gives it."""
    row = figures().get(source)
    return TOLERANCE.get(row["confidence"], DEFAULT_TOLERANCE) if row else DEFAULT_TOLERANCE


def check_observations(
    scenario: Scenario, dataset: xr.Dataset, fitted_until: str = FIT_END, seed: int = 0
) -> list[ObservationCheck]:
    """Set every observation of the scenario against the predictive band of its outcome in `dataset`
    (observation errors drawn with `seed`; the same seed gives the same bands)."""
    cutoff = parse_month(fitted_until)
    checks = []
    rng = np.random.default_rng([_PREDICTIVE_STREAM, seed])
    for observation in scenario.observations:
        date = month_label(observation.date)
        series = dataset[observation.outcome].sel(time=np.datetime64(date, "M")).values.reshape(-1)
        latent = band(series)
        median, band_low, band_high = band(predictive_draws(error_of(scenario, observation), series, rng))
        low, high = observation.bounds
        kind = "point" if low == high else observation.figure_kind
        checks.append(
            ObservationCheck(
                outcome=observation.outcome,
                date=date,
                value=observation.value,
                low=low,
                high=high,
                source=observation.source,
                note=observation.note,
                in_sample=observation.date <= cutoff,
                tolerance=tolerance_for(observation.source),
                median=median,
                band_low=band_low,
                band_high=band_high,
                latent_median=latent[0],
                latent_low=latent[1],
                latent_high=latent[2],
                kind=kind,
                label=outcome_label(scenario, observation.outcome),
                quantity=outcome_kind(scenario, observation.outcome),
            )
        )
    return checks + _home_front_checks(scenario, dataset, cutoff, rng)


def _home_front_checks(scenario: Scenario, dataset: xr.Dataset, cutoff: int, rng: np.random.Generator
                       ) -> list[ObservationCheck]:
    """The home front's yearly observations (a count in a region and year) against the model's predictive
    band, with the error of the figure's evidence grade (`error_of`); the date of a yearly count is December
    of its year."""
    spec = home_front_of(scenario)
    if spec is None or "home_plots" not in dataset.data_vars:
        return []
    checks = []
    for observation in spec.observations:
        runs = observed_runs(dataset, spec, observation)
        latent = band(runs)
        median, band_low, band_high = band(predictive_draws(error_of(scenario, observation), runs, rng))
        low, high = observation.bounds
        checks.append(
            ObservationCheck(
                outcome=f"home_front {observation.measure} {observation.region}",
                date=f"{observation.year}-12",
                value=observation.value,
                low=low,
                high=high,
                source=observation.source,
                note=observation.note,
                in_sample=observation.year * 12 + 11 <= cutoff,
                tolerance=tolerance_for(observation.source),
                median=median,
                band_low=band_low,
                band_high=band_high,
                latent_median=latent[0],
                latent_low=latent[1],
                latent_high=latent[2],
                kind="point" if low == high else "range",
                label=f"Home front: {observation.measure} in {observation.region}",
            )
        )
    return checks


def fit_check(
    scenario: Scenario,
    replicates: int = 200,
    seed: int = 1,
    engine: Engine = "stochastic",
    uncertainty: bool = True,
    fitted_until: str = FIT_END,
    policies: Mapping[str, float | None] | None = None,
    posterior: Posterior | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[ObservationCheck]:
    """Run the scenario and check every observation; `progress(n)` is told as runs finish.

    With `uncertainty`, each replicate draws the parameters from their declared distributions
    (Latin hypercube), or from `posterior` when given, so the band holds parameter and stochastic
    uncertainty together; without it, only the stochastic noise (or, with the deterministic engine,
    one central run). Either way the band compared is the predictive one (with observation error).
    """
    spec = home_front_of(scenario)
    if not scenario.observations and (spec is None or not spec.observations):
        return []
    model = compile_model(scenario, policies=policies)
    runs = 1 if engine == "deterministic" and not uncertainty else replicates
    parameters = None
    if uncertainty:
        parameters = (per_run_parameters(scenario, runs, seed) if posterior is None
                      else posterior.per_run_parameters(scenario, runs, seed))
    dataset = simulate(model, replicates=runs, seed=seed, engine=engine, parameters=parameters,
                       keep_compartments=False, progress=progress)
    return check_observations(scenario, dataset, fitted_until, seed)


def fit_summary(checks: list[ObservationCheck]) -> dict[str, dict[str, int]]:
    """Counts of each verdict and of observations within tolerance, in-sample and out-of-sample."""
    summary = {}
    for label, in_sample in (("in_sample", True), ("out_of_sample", False)):
        chosen = [c for c in checks if c.in_sample == in_sample]
        verdicts = [c.verdict for c in chosen]
        summary[label] = {
            "observations": len(chosen),
            **{key: verdicts.count(verdict) for key, verdict in SUMMARY_KEYS.items()},
            "within_tolerance": sum(c.within_tolerance for c in chosen),
        }
    return summary

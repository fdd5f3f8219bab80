"""Observations against the model: each observation's interval beside the model's band at its date.

Observations dated up to the end of the fitted window (December 2017 for the default scenario) are
in-sample: the scenario was fitted to them. Later ones are out-of-sample: they check forecasts and
were never used to fit. Two verdicts per observation:

- *in band*: the observation's interval [low, high] overlaps the model's 5-95% band;
- *within tolerance*: the model's median lies within a relative tolerance of that interval, the
  tolerance set by the confidence the evidence gives the figure (H 20%, M 35%, L 50%), since a
  figure the sources disagree on cannot be held to the precision of a well-measured one.

A missing `low` or `high` is the value itself: "over 40,000" is held to 40,000, not to anything above.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from aftermath.engines.simulate import Engine, simulate
from aftermath.experiments.sampling import per_run_parameters
from aftermath.model.compile import compile_model
from aftermath.scenario.evidence import figures
from aftermath.scenario.schema import Observation, Scenario, month_label, parse_month
from aftermath.summary import band

FIT_END = "2017-12"
"""End of the default scenario's fitted window (DESIGN principle 7)."""
TOLERANCE = {"H": 0.20, "M": 0.35, "L": 0.50}
"""Relative tolerance of the model's median by the evidence's confidence in the figure."""
DEFAULT_TOLERANCE = TOLERANCE["M"]
"""For observations whose source is not a graded figure of the evidence."""


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

    @property
    def in_band(self) -> bool:
        return bool(self.band_low <= self.high and self.low <= self.band_high)

    @property
    def error(self) -> float:
        """Distance from the model's median to the observation's interval, relative to the value."""
        gap = max(self.low - self.median, self.median - self.high, 0.0)
        return gap / abs(self.value) if self.value else gap

    @property
    def within_tolerance(self) -> bool:
        return bool(self.error <= self.tolerance)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "in_band": self.in_band, "error": self.error, "within_tolerance": self.within_tolerance}


def observation_interval(observation: Observation) -> tuple[float, float]:
    """[low, high] of an observation; a bound it does not give is its value."""
    low = observation.value if observation.low is None else observation.low
    high = observation.value if observation.high is None else observation.high
    return float(low), float(high)


def tolerance_for(source: str) -> float:
    """The relative tolerance for a figure, by the confidence the evidence gives it."""
    row = figures().get(source)
    return TOLERANCE.get(row["confidence"], DEFAULT_TOLERANCE) if row else DEFAULT_TOLERANCE


def check_observations(scenario: Scenario, dataset: xr.Dataset, fitted_until: str = FIT_END) -> list[ObservationCheck]:
    """Set every observation of the scenario against the band of its outcome in `dataset`."""
    cutoff = parse_month(fitted_until)
    checks = []
    for observation in scenario.observations:
        date = month_label(observation.date)
        series = dataset[observation.outcome].sel(time=np.datetime64(date, "M")).values.reshape(-1)
        median, band_low, band_high = band(series)
        low, high = observation_interval(observation)
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
    progress: Callable[[int], None] | None = None,
) -> list[ObservationCheck]:
    """Run the scenario and check every observation; `progress(n)` is told as runs finish.

    With `uncertainty`, each replicate draws the parameters from their declared distributions
    (Latin hypercube), so the band holds parameter and stochastic uncertainty together; without it,
    only the stochastic noise (or, with the deterministic engine, one central run).
    """
    if not scenario.observations:
        return []
    model = compile_model(scenario, policies=policies)
    runs = 1 if engine == "deterministic" and not uncertainty else replicates
    parameters = per_run_parameters(scenario, runs, seed) if uncertainty else None
    dataset = simulate(model, replicates=runs, seed=seed, engine=engine, parameters=parameters,
                       keep_compartments=False, progress=progress)
    return check_observations(scenario, dataset, fitted_until)


def fit_summary(checks: list[ObservationCheck]) -> dict[str, dict[str, int]]:
    """Counts of observations in band and within tolerance, in-sample and out-of-sample."""
    summary = {}
    for label, in_sample in (("in_sample", True), ("out_of_sample", False)):
        chosen = [c for c in checks if c.in_sample == in_sample]
        summary[label] = {
            "observations": len(chosen),
            "in_band": sum(c.in_band for c in chosen),
            "within_tolerance": sum(c.within_tolerance for c in chosen),
        }
    return summary

"""The observation model: how a reported figure relates to the model's outcome at its date.

Each observation has an error distribution around the model's value m (its own `error`, else the
scenario's `observation_model` for the evidence grade of its source, else BUILTIN_MODEL) and a kind:
a point, a range, a lower bound ("at least") or an upper bound ("up to"). Ranges and bounds are
censored data (Gelman et al., Bayesian Data Analysis, 3rd ed., section 8.7): the likelihood of a figure
"at least L" is P(Y >= L | m), of "up to U" P(Y <= U | m), of a range P(low <= Y <= high | m); a point's
is the density (or, for the negative binomial, the probability) of the value.

The *latent* value is the model's outcome; a *predictive* draw adds the observation error, i.e. what
a report would say. Comparisons with observations use the predictive draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from aftermath.scenario.observation_model import FLOOR, error_of, observation_model
from aftermath.scenario.schema import ObservationError, Scenario, month_label

CURVATURE_STEP = 1e-3
"""The step in log m of `Likelihood.log_curvature`'s central differences."""


@dataclass(frozen=True)
class Likelihood:
    """The observations one calibration uses, as arrays (n observations), ready to score model values.

    `index[i]` is the position of observation i in `scenario.observations`.
    """

    index: np.ndarray
    outcomes: tuple[str, ...]
    dates: tuple[str, ...]
    kinds: tuple[str, ...]
    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    errors: tuple[ObservationError, ...]

    def __len__(self) -> int:
        return len(self.index)

    def model_values(self, dataset: xr.Dataset) -> np.ndarray:
        """(replicates, n) the model's outcome at each observation's date (latent values)."""
        times = dataset["time"].values.astype("datetime64[M]")
        replicates = dataset.sizes["replicate"]
        columns = np.zeros((replicates, len(self)))
        arrays: dict[str, np.ndarray] = {}
        for i, (outcome, date) in enumerate(zip(self.outcomes, self.dates, strict=True)):
            if outcome not in arrays:
                arrays[outcome] = dataset[outcome].transpose("replicate", "time", ...).values.reshape(
                    replicates, len(times))
            columns[:, i] = arrays[outcome][:, int(np.searchsorted(times, np.datetime64(date, "M")))]
        return columns

    def log_likelihood(self, model: np.ndarray) -> np.ndarray:
        """(replicates,) the log likelihood of all observations given model values (replicates, n);
        -inf where a model value is not finite."""
        total = np.zeros(model.shape[0])
        for i in range(len(self)):
            total += log_probability(self.errors[i], self.kinds[i], self.values[i], self.lower[i], self.upper[i],
                                     model[:, i])
        return np.where(np.isfinite(total), total, -np.inf)


    def log_curvature(self, model: np.ndarray, step: float = CURVATURE_STEP) -> np.ndarray:
        """(n,) -d^2/d(log m)^2 of each observation's log probability at model values m (n,), by central
        differences in log m: the observation's information about log m (1 / sigma^2 for a lognormal point;
        less, or below 0, for a range or a bound the model value lies inside). NaN where m is not finite."""
        shifts = np.exp(np.array([-step, 0.0, step]))
        curvature = np.full(len(self), np.nan)
        for i in range(len(self)):
            if np.isfinite(model[i]):
                low, mid, high = log_probability(self.errors[i], self.kinds[i], self.values[i], self.lower[i],
                                                 self.upper[i], max(float(model[i]), FLOOR) * shifts)
                curvature[i] = -(low - 2.0 * mid + high) / step**2
        return curvature



def likelihood(scenario: Scenario, until: int | None = None) -> Likelihood:
    """The scenario's observations dated up to month index `until` (all if None).

    A range of zero width (low = high) is scored as a point.
    """
    chosen = [i for i, o in enumerate(scenario.observations) if until is None or o.date <= until]
    observations = [scenario.observations[i] for i in chosen]
    return Likelihood(
        index=np.array(chosen, dtype=np.int64),
        outcomes=tuple(o.outcome for o in observations),
        dates=tuple(month_label(o.date) for o in observations),
        kinds=tuple("point" if o.bounds[0] == o.bounds[1] else o.figure_kind for o in observations),
        values=np.array([o.value for o in observations], dtype=float),
        lower=np.array([o.bounds[0] for o in observations], dtype=float),
        upper=np.array([o.bounds[1] for o in observations], dtype=float),
        errors=tuple(error_of(scenario, o) for o in observations),
    )


def log_probability(
    error: ObservationError, kind: str, value: float, lower: float, upper: float, model: np.ndarray
) -> np.ndarray:
    """log P(figure | model value) for model values (replicates,): the density of a point (the
    probability, for the negative binomial), the probability of the interval for a range or a bound
    (censored). A negative binomial counts whole persons: a point is its probability at the rounded
    value, an interval takes the counts from ceil(lower) to floor(upper). -inf where the model value
    is not finite; model values below FLOOR are taken as FLOOR."""
    m = np.maximum(np.nan_to_num(np.asarray(model, dtype=float), nan=FLOOR, posinf=FLOOR), FLOOR)
    with np.errstate(all="ignore"):
        if error.distribution == "negative_binomial":
            result = _negative_binomial(error.spread, kind, value, lower, upper, m)
        else:
            result = _continuous(error, kind, value, lower, upper, m)
    return np.where(np.isfinite(model), np.asarray(result, dtype=float), -np.inf)


def _continuous(error: ObservationError, kind: str, value: float, lower: float, upper: float,
                m: np.ndarray) -> np.ndarray:
    """Lognormal: log Y ~ N(log m, sigma); normal: Y ~ N(m, cv m). In standard units u = (g(y) - mu) / s,
    with log Phi from scipy.special.log_ndtr (accurate far in the tails)."""
    from scipy.special import log_ndtr

    lognormal = error.distribution == "lognormal"
    scale = error.spread if lognormal else error.spread * m
    centre = np.log(m) if lognormal else m

    def standard(y: float) -> np.ndarray:
        if lognormal:
            return (np.log(y) - centre) / scale if y > 0 else np.full_like(m, -np.inf)
        return (y - centre) / scale

    if kind == "point":
        u = standard(value)
        jacobian = np.log(value) if lognormal else 0.0
        return -0.5 * u * u - np.log(scale) - 0.5 * np.log(2 * np.pi) - jacobian
    below_high = log_ndtr(standard(upper)) if np.isfinite(upper) else np.zeros_like(m)
    if kind == "up_to" or not lower > (0 if lognormal else -np.inf):
        return below_high  # P(Y <= upper): an "up to" figure says nothing below
    above_low = log_ndtr(-standard(lower))
    if not np.isfinite(upper):
        return above_low
    below_low = log_ndtr(standard(lower))
    return _log_difference(below_high, below_low)


def _log_difference(log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    """log(a - b) from log a and log b, for a >= b; -inf where a <= b."""
    gap = np.minimum(log_b - log_a, 0.0)
    return np.where(log_b < log_a, log_a + np.log1p(-np.exp(gap)), -np.inf)


def _negative_binomial(k: float, kind: str, value: float, lower: float, upper: float, m: np.ndarray) -> np.ndarray:
    """Mean m, variance m + m^2 / k: scipy.stats.nbinom(k, k / (k + m))."""
    from scipy import stats  # imported here: scipy.stats costs seconds at CLI start-up

    frozen = stats.nbinom(k, k / (k + m))
    if kind == "point":
        return frozen.logpmf(np.round(value))
    high = np.floor(upper)
    low = np.ceil(lower) - 1  # P(Y >= ceil(lower)) = sf(ceil(lower) - 1)
    if not np.isfinite(upper):
        return frozen.logsf(low) if low >= 0 else np.zeros_like(m)
    below_high = frozen.logcdf(high)
    return _log_difference(below_high, frozen.logcdf(low)) if low >= 0 else below_high


def predictive_draws(error: ObservationError, model: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One reported figure per model value (any shape): the model value with the observation error
    drawn around it. Never negative."""
    m = np.maximum(np.nan_to_num(np.asarray(model, dtype=float), nan=0.0), 0.0)
    if error.distribution in CONTINUOUS:
        return _around(error, m, rng.standard_normal(m.shape))
    k = error.spread
    return rng.negative_binomial(k, k / (k + np.maximum(m, FLOOR))).astype(float)


CONTINUOUS = ("lognormal", "normal")
"""Error distributions drawn from one standard normal per value, whatever the value."""


def _around(error: ObservationError, m: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Model values m (>= 0) with a lognormal or normal error, from standard normal draws of the same shape."""
    if error.distribution == "lognormal":
        return m * np.exp(error.spread * normals)
    return np.maximum(m + error.spread * m * normals, 0.0)


NORMALS_PER_CHUNK = 1 << 20
"""Standard normals drawn at once when the stream of a whole run is replayed (8 MB)."""


def _draws_at(error: ObservationError, data: xr.DataArray, grid: np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
    """`predictive_draws` of the whole run (dims replicate, time, ...; `grid` its times) kept at the times of
    `data`: the standard normals of every time are drawn, in the whole run's order, a chunk of replicates
    at a time, and only those at `data`'s times are used (a Generator's stream does not depend on how its
    draws are split into calls)."""
    grid, times = grid.astype("datetime64[M]"), data["time"].values.astype("datetime64[M]")
    positions = np.minimum(np.searchsorted(grid, times), len(grid) - 1)
    if not (grid[positions] == times).all():
        raise ValueError("the predictive draws' times are not all on the run's grid")
    shape = (data.shape[0], len(grid), *data.shape[2:])
    normals = np.empty(data.shape)
    rows = max(1, NORMALS_PER_CHUNK // max(int(np.prod(shape[1:])), 1))
    for start in range(0, shape[0], rows):
        stop = min(start + rows, shape[0])
        normals[start:stop] = rng.standard_normal((stop - start, *shape[1:]))[:, positions]
    return _around(error, np.maximum(np.nan_to_num(data.values.astype(float), nan=0.0), 0.0), normals)


def outcome_error(scenario: Scenario, outcome: str) -> ObservationError:
    """The error a future report of `outcome` would carry: that of the outcome's latest observation,
    else the observation model's default."""
    observed = [o for o in scenario.observations if o.outcome == outcome]
    if observed:
        return error_of(scenario, max(observed, key=lambda o: o.date))
    return observation_model(scenario).default


def predictive(
    scenario: Scenario, dataset: xr.Dataset, seed: int = 0, grid: np.ndarray | None = None,
    series: xr.Dataset | None = None,
) -> xr.Dataset:
    """The observed outcomes of `dataset` (those with an observation, one number per date) as a future
    report would give them: every value with the outcome's observation error drawn around it
    (`outcome_error`), seeded by `seed`. Same dims and coordinates; other outcomes are left out.

    `grid`: the whole run's time coordinate, when `dataset` holds only some of its times (e.g. the key dates
    kept block by block, `aftermath.summary.at_dates`): the draws are then exactly those the whole run gets
    at those times. A negative binomial draw depends on the value itself, so the stream can only be
    replayed over every value: `series` must then hold the whole series of the outcomes
    `needs_series` names (ValueError otherwise). Dims: (replicate, time, ...) as `simulate` gives them.
    """
    rng = np.random.default_rng(seed)
    observed = dict.fromkeys(o.outcome for o in scenario.observations if o.outcome in dataset.data_vars)
    drawn = {}
    for name in observed:
        error, data = outcome_error(scenario, name), dataset[name]
        if grid is None or data.sizes["time"] == len(grid):
            drawn[name] = data.copy(data=predictive_draws(error, data.values, rng))
        elif error.distribution in CONTINUOUS:
            drawn[name] = data.copy(data=_draws_at(error, data, np.asarray(grid), rng))
        elif series is not None and name in series.data_vars and series.sizes["time"] == len(grid):
            whole = series[name].copy(data=predictive_draws(error, series[name].values, rng))
            drawn[name] = whole.sel(time=data["time"])
        else:
            raise ValueError(f"the predictive draws of {name!r} (negative binomial) need its value at every time")
    return xr.Dataset(drawn)


def needs_series(scenario: Scenario) -> list[str]:
    """The observed outcomes whose predictive draws need every value of the run (negative binomial errors),
    not only those at the dates shown; see `predictive`."""
    observed = dict.fromkeys(o.outcome for o in scenario.observations)
    return [name for name in observed if outcome_error(scenario, name).distribution not in CONTINUOUS]

"""Rolling-origin backtests: calibrate up to each cutoff, forecast the observations after it, score them.

For each cutoff c (YYYY-MM) the scenario is calibrated to the observations dated up to c
(`aftermath.inference.calibration.calibrate`); the observations dated after c and up to `until` (the
end of the fitted window: for the default scenario 2017-12, so later figures are never read) are the
targets. Three forecasts of each target are scored (`aftermath.scoring`), each a predictive ensemble
of `runs` reports (the model's value with the observation error of the target drawn around it,
`aftermath.inference.observation.predictive_draws`):

- `posterior`: the model run on draws of the cutoff's posterior;
- `prior`: the model run on draws of the declared priors (no calibration), a naive baseline;
- `persistence`: the target's outcome stays at its last value observed up to the cutoff (the reported
  value of the latest such observation), a naive baseline; a target whose outcome was never observed up
  to the cutoff has no persistence forecast.

As in ViEWS' rolling-origin evaluations, the scores of all cutoffs are also pooled.

Forecasts are ex post by default: the scenario's schedules (its exogenous time series: the inflow of
recruits, the territory held, ...) are taken as declared after the cutoff, as if they had been known then.
A schedule fitted to later figures makes an ex-post backtest look better than any forecast could have been.
With `ex_ante=True` the forecasts use only what a forecaster at the cutoff knew (ex-ante forecasts, Hyndman &
Athanasopoulos, Forecasting: Principles and Practice, 3rd ed. (FPP3), section 7.6): every schedule is
held at its value at the cutoff from then on (`held_at`: the naive forecast, FPP3 5.2), and a schedule
that is a positive level is given the naive forecast's uncertainty (`ex_ante_scenario`, FPP3 5.5): its log follows
a random walk from the cutoff, so h years on it is the held value times exp(sigma sqrt(h) Z), Z standard
normal, sigma the root mean square of the schedule's monthly log changes up to the cutoff, per year.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from aftermath.engines.simulate import Engine, simulate
from aftermath.experiments.sampling import (
    draws_from_unit,
    expand_draws,
    per_run_parameters,
    uncertain_parameters,
    unit_samples,
)
from aftermath.inference.calibration import PARETO_K_LIMIT, Method, Posterior, calibrate, model_until
from aftermath.inference.observation import Likelihood, likelihood, predictive_draws
from aftermath.model.compile import schedule_values, stable_id
from aftermath.scenario.expressions import names_in
from aftermath.scenario.schema import Distribution, Parameter, Scenario, Schedule, month_label, parse_month
from aftermath.scenario.validate import parsed
from aftermath.scoring import Score, Summary, Target, score_ensemble, summarise
from aftermath.units import is_probability_unit

FORECASTS = ("posterior", "prior", "persistence")
_PREDICTIVE_STREAM = stable_id("backtest predictive draws")
HORIZON = "years_after_cutoff_sqrt"
"""The schedule `ex_ante_scenario` adds: the square root of the years since the cutoff (0 up to it)."""
FORECAST_ERROR = "{}_forecast_error"
"""The uncertain parameter `ex_ante_scenario` adds for a schedule: its level a year after the cutoff over the
held value."""


@dataclass(frozen=True)
class Fold:
    """One cutoff: its posterior's diagnostics, its targets' scores and their summaries by forecast."""

    cutoff: str
    calibrated_on: int
    scores: list[Score]
    summaries: dict[str, Summary]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    schedule_sigma: dict[str, float] = field(default_factory=dict)
    """Ex ante: each schedule given the naive forecast's uncertainty, with its sigma (log change per sqrt year)."""


@dataclass(frozen=True)
class Backtest:
    """A backtest's folds and the scores of all folds pooled (`pooled`, by forecast)."""

    scenario: str
    until: str
    runs: int
    seed: int
    engine: str
    method: str
    ex_ante: bool
    """Forecast with the schedules held at their values at each cutoff, with the naive forecast's uncertainty
    (else as declared: ex post)."""
    folds: list[Fold]
    pooled: dict[str, Summary]

    def as_payload(self) -> dict[str, Any]:
        """JSON-ready: what `--json` prints, `--save` writes and `aftermath report --with` reads."""
        return {
            "kind": "backtest", "scenario": self.scenario, "until": self.until, "runs": self.runs,
            "seed": self.seed, "engine": self.engine, "method": self.method, "ex_ante": self.ex_ante,
            "folds": [{"cutoff": f.cutoff, "calibrated_on": f.calibrated_on, "diagnostics": _plain(f.diagnostics),
                       "schedule_sigma": dict(f.schedule_sigma),
                       "summaries": {k: s.as_dict() for k, s in f.summaries.items()},
                       "scores": [s.as_dict() for s in f.scores]} for f in self.folds],
            "pooled": {k: s.as_dict() for k, s in self.pooled.items()},
        }


def _plain(value: Any) -> Any:
    """numpy scalars and arrays in diagnostics as JSON-ready numbers and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def targets_after(scenario: Scenario, cutoff: str, until: str) -> Likelihood:
    """The observations dated after `cutoff` and up to `until`, as a Likelihood (its arrays)."""
    everything = likelihood(scenario, parse_month(until))
    after = np.array([scenario.observations[i].date > parse_month(cutoff) for i in everything.index], dtype=bool)
    return _subset(everything, after)


def _subset(full: Likelihood, keep: np.ndarray) -> Likelihood:
    chosen = np.flatnonzero(keep)
    return replace(
        full, index=full.index[chosen], outcomes=tuple(full.outcomes[i] for i in chosen),
        dates=tuple(full.dates[i] for i in chosen), kinds=tuple(full.kinds[i] for i in chosen),
        values=full.values[chosen], lower=full.lower[chosen], upper=full.upper[chosen],
        errors=tuple(full.errors[i] for i in chosen),
    )


def _targets(scenario: Scenario, chosen: Likelihood) -> list[Target]:
    return [
        Target(chosen.outcomes[i], chosen.dates[i], scenario.observations[int(chosen.index[i])].source,
               chosen.kinds[i], float(chosen.values[i]), float(chosen.lower[i]), float(chosen.upper[i]))
        for i in range(len(chosen))
    ]


def predictive(chosen: Likelihood, latent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(runs, targets) reported figures: each target's observation error drawn around the latent values."""
    return np.column_stack([predictive_draws(chosen.errors[i], latent[:, i], rng) for i in range(len(chosen))])


def last_observed(scenario: Scenario, outcome: str, cutoff: int) -> float | None:
    """The reported value of the latest observation of `outcome` dated up to month index `cutoff`."""
    earlier = [o for o in scenario.observations if o.outcome == outcome and o.date <= cutoff]
    return float(max(earlier, key=lambda o: o.date).value) if earlier else None


def inputs_text(payload: Mapping[str, Any]) -> str:
    """How a backtest's forecasts took the schedules after each cutoff, in words (tables and the report)."""
    if payload.get("ex_ante"):
        return ("ex ante: the schedules held at their values at each cutoff, a positive level with the naive "
                "forecast's random-walk uncertainty")
    return "ex post: the schedules as declared after each cutoff, as if they had been known"


def calibration_text(payload: Mapping[str, Any]) -> str:
    """Each cutoff's calibration in words: the observations it used and how far its posterior can be trusted."""
    parts = []
    for fold in payload["folds"]:
        d = fold["diagnostics"]
        if isinstance(d.get("rhat"), Mapping):
            worst = max((v for v in d["rhat"].values() if v is not None), default=None)
            trust = f"largest R-hat {worst:.3g}" if worst is not None else "R-hat undefined"
        else:
            k = d.get("pareto_k")
            trust = (f"Pareto k {k:.2f}, " if k is not None else "") + f"ESS {d.get('ess', 0):,.0f}"
            if k is not None and k > PARETO_K_LIMIT:
                trust += f" (k above {PARETO_K_LIMIT}: unreliable weights; give more --steps)"
        parts.append(f"{fold['cutoff']}: {fold['calibrated_on']} observations, {trust}")
    return f"Calibrations ({payload['method']}): {'; '.join(parts)}."


def schedule_sigma_text(payload: Mapping[str, Any]) -> str:
    """Ex ante: each cutoff's schedules given the naive forecast's uncertainty, with their sigmas, in words."""
    parts = [f"{fold['cutoff']}: " + ", ".join(f"{name} {sigma:.2f}" for name, sigma in fold["schedule_sigma"].items())
             for fold in payload["folds"] if fold.get("schedule_sigma")]
    return f"Naive forecast's sigma (log change per square-root year) by cutoff: {'; '.join(parts)}." if parts else ""


def held_at(scenario: Scenario, cutoff: str) -> Scenario:
    """`scenario` with every schedule held at its value at `cutoff` (YYYY-MM) from then on: its points after
    the cutoff dropped and one added at the cutoff with the value the schedule has there."""
    month = parse_month(cutoff)
    schedules = {}
    for name, schedule in scenario.schedules.items():
        held = {key: value for key, value in schedule.points.items() if parse_month(key) < month}
        held[month_label(month)] = float(schedule_values(schedule, np.array([month]))[0])
        schedules[name] = schedule.model_copy(update={"points": held})
    return scenario.model_copy(update={"schedules": schedules})


def naive_sigma(schedule: Schedule, start: int, cutoff: int) -> float | None:
    """The naive forecast's sigma for `schedule` at month index `cutoff`: the root mean square of its monthly log
    changes from `start` to `cutoff` (FPP3 5.5, the residuals of the naive method), per year (x sqrt 12).

    None when the schedule is no positive level there: a negative value (a shape, not a level), a value of 0 at
    the cutoff (a multiplicative error leaves it 0), or no change between two positive months (a constant or an
    on/off switch). Months at 0 before the cutoff are left out of the changes.
    """
    values = schedule_values(schedule, np.arange(start, cutoff + 1))
    if len(values) < 2 or (values < 0).any() or values[-1] <= 0:
        return None
    positive = (values[:-1] > 0) & (values[1:] > 0)
    changes = np.diff(np.log(np.where(values > 0, values, 1.0)))[positive]
    if not len(changes) or not changes.any():
        return None
    return float(np.sqrt(np.mean(changes ** 2) * 12))


class _WithForecastError(ast.NodeTransformer):
    """Each name of a schedule with a forecast error as `schedule * error ** horizon` (capped at 1 for a
    fraction)."""

    def __init__(self, capped: Mapping[str, bool]) -> None:
        self.capped = capped

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id not in self.capped:
            return node
        moved = ast.parse(f"({node.id} * {FORECAST_ERROR.format(node.id)} ** {HORIZON})", mode="eval").body
        return ast.parse(f"min({ast.unparse(moved)}, 1)", mode="eval").body if self.capped[node.id] else moved


def ex_ante_scenario(scenario: Scenario, cutoff: str) -> tuple[Scenario, dict[str, float]]:
    """`scenario` as a forecaster at `cutoff` (YYYY-MM) knew it, and the sigma of each schedule given an error:
    every schedule held at its value at the cutoff (`held_at`), and each with a `naive_sigma` given the naive
    forecast's random-walk error from the cutoff (`with_forecast_error`).

    Raises ValueError when a name `with_forecast_error` adds is already the scenario's.
    """
    month = parse_month(cutoff)
    sigmas = {name: sigma for name, schedule in scenario.schedules.items()
              if (sigma := naive_sigma(schedule, scenario.time.start, month)) is not None}
    reason = (f"ex-ante backtest from {cutoff}: the naive forecast's uncertainty (FPP3 5.5), sigma from the "
              "schedule's monthly log changes up to the cutoff")
    return with_forecast_error(held_at(scenario, cutoff), cutoff, sigmas, reason), sigmas


def with_forecast_error(scenario: Scenario, start: str, sigmas: Mapping[str, float], reason: str) -> Scenario:
    """`scenario` with each schedule in `sigmas` uncertain from `start` (YYYY-MM) on, as a random walk in its log.

    Each such schedule gets an uncertain parameter FORECAST_ERROR (lognormal, median 1, sigma `sigmas[name]`:
    its level a year after `start` over the declared one), and the flows' rates and events' fractions read it
    as `schedule * error ** HORIZON`, HORIZON the square root of the years since `start`: h years on, the log
    level's sd is sigma sqrt(h), as a random walk's (FPP3 5.5); each run draws one error per schedule, so a
    path is a scaled copy of one draw. A fraction is capped at 1. `reason` is the added numbers' assumption.
    Sub-models that read a schedule by name (the network's territory, the home front's media and vigilance)
    read the declared value.

    Raises ValueError when a name this adds is already the scenario's.
    """
    if not sigmas:
        return scenario
    added = [HORIZON, *(FORECAST_ERROR.format(name) for name in sigmas)]
    taken = [name for name in added if name in {*scenario.parameters, *scenario.schedules, *scenario.compartments}]
    if taken:
        raise ValueError(f"the forecast error adds {', '.join(taken)}, which the scenario already names")
    parameters = dict(scenario.parameters)
    for name, sigma in sigmas.items():
        parameters[FORECAST_ERROR.format(name)] = Parameter(
            unit="ratio", value=1.0, distribution=Distribution(type="lognormal", median=1.0, sigma=sigma),
            assumption=reason)
    month = parse_month(start)
    horizon = Schedule(interpolation="step", assumption=reason, points={
        month_label(m): float(np.sqrt((m - month) / 12)) for m in range(month, scenario.time.end + 1)})
    rewrite = _WithForecastError({name: is_probability_unit(scenario.schedules[name].unit) for name in sigmas})

    def rewritten(text: str | float, where: tuple) -> str | float:
        if isinstance(text, int | float):
            return text
        tree = parsed(text, where)
        return ast.unparse(rewrite.visit(tree)) if set(sigmas) & set(names_in(tree)) else text

    flows = [flow.model_copy(update={"rate": rewritten(flow.rate, ("flows", i, "rate"))})
             for i, flow in enumerate(scenario.flows)]
    events = [event.model_copy(update={"fraction": rewritten(event.fraction, ("events", i, "fraction"))})
              for i, event in enumerate(scenario.events)]
    return scenario.model_copy(update={"parameters": parameters, "schedules": {**scenario.schedules, HORIZON: horizon},
                                       "flows": flows, "events": events})


def forecast_parameters(scenario: Scenario, posterior: Posterior, runs: int, seed: int) -> dict[str, np.ndarray]:
    """Per-run parameters of the posterior forecast: the posterior's draws, and a Latin-hypercube draw from the
    prior of each uncertain parameter of `scenario` the posterior does not hold (e.g. `ex_ante_scenario`'s errors)."""
    draws = posterior.parameter_draws(runs, seed)
    others = [name for name in uncertain_parameters(scenario) if name not in posterior.names]
    if others:
        points = unit_samples(len(others), runs, "lhs", stable_id(f"backtest parameters not in the posterior {seed}"))
        draws |= draws_from_unit(scenario, others, points)
    return expand_draws(scenario, draws)


def forecast_scores(
    scenario: Scenario, chosen: Likelihood, posterior: Posterior, cutoff: str, runs: int, seed: int,
    engine: Engine = "stochastic",
) -> list[Score]:
    """Scores of the three forecasts (FORECASTS) of the targets `chosen` from the cutoff `cutoff`."""
    if not len(chosen):
        return []
    model = model_until(scenario, max(parse_month(d) for d in chosen.dates))
    targets = _targets(scenario, chosen)
    rng = np.random.default_rng([_PREDICTIVE_STREAM, seed, parse_month(cutoff)])
    scores: list[Score] = []
    for name, parameters in (("posterior", forecast_parameters(scenario, posterior, runs, seed)),
                             ("prior", per_run_parameters(scenario, runs, seed))):
        data = simulate(model, replicates=runs, seed=seed, engine=engine, parameters=parameters,
                        keep_compartments=False)
        reports = predictive(chosen, chosen.model_values(data), rng)
        scores += [score_ensemble(target, reports[:, i], name) for i, target in enumerate(targets)]
    month = parse_month(cutoff)
    for i, target in enumerate(targets):
        last = last_observed(scenario, target.outcome, month)
        if last is not None:
            reports = predictive_draws(chosen.errors[i], np.full(runs, last), rng)
            scores.append(score_ensemble(target, reports, "persistence"))
    return scores


def backtest(
    scenario: Scenario,
    cutoffs: Sequence[str],
    *,
    until: str = "2017-12",
    runs: int = 200,
    seed: int = 0,
    engine: Engine = "stochastic",
    method: Method = "laplace",
    calibration: Mapping[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    ex_ante: bool = False,
) -> Backtest:
    """Calibrate up to each cutoff, forecast the observations after it (to `until`) and score them;
    with `ex_ante`, forecast with the schedules held at their values at the cutoff (see the module's text).

    `calibration` holds further arguments of `calibrate` (walkers, steps, store, ...); `progress(cutoff,
    done, total)` is told each calibration's progress. Cutoffs must be YYYY-MM, ascending, before `until`.

    Raises ValueError for a bad cutoff or a cutoff with no observation to calibrate on, and what
    `calibrate` raises.
    """
    months = [parse_month(c) for c in cutoffs]
    if not months:
        raise ValueError("give at least one cutoff")
    if months != sorted(set(months)) or months[-1] > parse_month(until):
        raise ValueError(f"cutoffs must be ascending and not after {until}; got {', '.join(cutoffs)}")
    folds = []
    for cutoff in (month_label(m) for m in months):
        posterior = calibrate(scenario, until=cutoff, method=method, draws=runs, seed=seed,
                              progress=(lambda done, total, c=cutoff: progress(c, done, total)) if progress else None,
                              **dict(calibration or {}))
        chosen = targets_after(scenario, cutoff, until)
        forecaster, sigmas = ex_ante_scenario(scenario, cutoff) if ex_ante else (scenario, {})
        scores = forecast_scores(forecaster, chosen, posterior, cutoff, runs, seed, engine)
        folds.append(Fold(cutoff, int(posterior.diagnostics.get("observations", 0)), scores,
                          {name: summarise(scores, name) for name in FORECASTS}, dict(posterior.diagnostics), sigmas))
    everything = [s for fold in folds for s in fold.scores]
    return Backtest(scenario.name, until, runs, seed, engine, method, ex_ante, folds,
                    {name: summarise(everything, name) for name in FORECASTS})

"""Bayesian calibration of a scenario's uncertain parameters to its observations up to a cutoff.

Python API (stable; the CLI's `aftermath calibrate` and `--posterior RUN` are thin layers over it):

    calibrate(scenario, *, until="2017-12", method="laplace", draws=1000, seed=0, store=None,
              progress=None, walkers=None, steps=None, chunk=None, resume=None) -> Posterior
    load_posterior(store, run_id) -> Posterior
    Posterior.parameter_draws(runs, seed) -> {parameter: (runs,)}   # like sampling.sample_draws
    Posterior.per_run_parameters(scenario, runs, seed, fixed=()) -> arrays for `simulate`

The priors are the parameters' declared distributions; the likelihood is the observation model
(`aftermath.inference.observation`) of every observation dated up to `until`, evaluated on the
deterministic engine, which runs a whole batch of parameter sets at once.

method "laplace" (the default): the posterior mode (MAP) by L-BFGS-B (scipy.optimize, with gradients by
forward differences, each gradient one batch of the deterministic engine), a Gaussian approximation at
the mode whose precision is the prior's identity plus the Gauss-Newton (Fisher) term J' C J (J: the
Jacobian of the log model values at the observations; C: each observation's curvature in log m, clipped
at 0), then importance sampling with that Gaussian, widened by PROPOSAL_INFLATION, as the proposal:
`steps` proposals (default 4000) weighted by posterior / proposal, the weights Pareto-smoothed (PSIS,
Vehtari et al. 2024, JMLR 25(72), with arviz). Diagnostics: the Pareto k-hat of the weights (below
PARETO_K_LIMIT the estimate is reliable; above, use emcee), the effective sample size of the weights
(Kish), the mode's log posterior and the optimiser's iterations. Exact in the limit of many proposals
whatever the posterior's shape; efficient when the posterior is near Gaussian in z (the default
scenario's 41 informed parameters: ESS about 30% of the proposals). A few minutes where emcee needs
hours to mix.

method "emcee": the affine-invariant ensemble sampler (Goodman & Weare 2010, emcee: Foreman-Mackey
et al. 2013) in standard-normal coordinates z (theta = F^-1(Phi(z)) for each parameter's prior CDF F),
where every prior is N(0, 1): no bounds for the walkers to hit, and the prior log density is -|z|^2/2.
All walkers' proposals of a step are evaluated as one batch of the deterministic engine (emcee's
`vectorize`). The first half of the chain is burn-in; `draws` equally weighted draws are taken evenly
from the rest. Diagnostics: mean acceptance fraction, integrated autocorrelation time and effective
sample size per parameter (emcee.autocorr), and split R-hat over the walkers (Gelman et al., Bayesian
Data Analysis, 3rd ed., eq. 11.4; walkers of an ensemble are not independent chains, so read it as a
check, not a proof).

method "prior": no fitting; the prior's draws, weighted by their likelihood (importance sampling),
with the effective sample size of the weights (Kish). A quick check of how much the data say.

With a `store`, the calibration is a run of kind 'calibration': its chain is written every `chunk`
steps together with the sampler's random state, and `resume=run_id` continues a killed calibration
from its last stored step; the continued chain is identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from aftermath.engines.simulate import simulate
from aftermath.errors import ModelError
from aftermath.experiments.sampling import draws_from_unit, expand_draws, uncertain_parameters, unit_samples
from aftermath.inference.observation import Likelihood, likelihood
from aftermath.model.compile import CompiledModel, compile_model, scenario_hash, stable_id
from aftermath.resources import check_seed
from aftermath.scenario.observation_model import FLOOR
from aftermath.scenario.schema import Scenario, month_label, parse_month
from aftermath.scenario.validate import TAIL
from aftermath.store.database import Store, StoreError

Method = Literal["laplace", "emcee", "prior"]
METHODS: tuple[str, ...] = ("laplace", "emcee", "prior")
DEFAULT_UNTIL = "2017-12"
_INITIAL_STREAM = stable_id("calibration initial walkers")
_RESAMPLE_STREAM = stable_id("posterior resampling")
_SCREEN_STREAM = stable_id("calibration screening")
_INERT_STREAM = stable_id("calibration inert parameters")
_PROPOSAL_STREAM = stable_id("calibration laplace proposals")
MIN_WALKERS = 16
SCREEN_POINTS = 4
"""Prior points at which `Problem.screen` tries each parameter."""
IMPORTANCE_BATCH = 256
"""Prior (or proposal) draws the deterministic engine runs at once in methods 'prior' and 'laplace'."""
DIFFERENCE_STEP = 1e-4
"""Forward-difference step of method 'laplace', in prior standard deviations (z units)."""
MODE_ITERATIONS = 200
"""At most this many L-BFGS-B iterations for the mode (the default scenario's takes 13): a bound on the time,
not a tolerance; the importance weights correct a mode that is not quite reached."""
PROPOSAL_INFLATION = 1.1
"""Method 'laplace' proposes from N(mode, PROPOSAL_INFLATION x the Laplace covariance): a little wider than
the approximation, so the proposal's tails cover the posterior's (measured on the default scenario: Kish
ESS 24%, 31% and 26% of 840 proposals at 1.0, 1.1 and 1.3)."""
PARETO_K_LIMIT = 0.7
"""Importance weights with a Pareto k-hat above this give unreliable estimates (Vehtari et al. 2024)."""


@dataclass(frozen=True)
class Posterior:
    """Weighted draws of the uncertain parameters after calibration.

    `draws[name]` is (n,) in the same terms as `sampling.sample_draws` (the value, or the multiplier
    of a relative distribution); `weights` (n,) sum to 1; `log_likelihood` (n,) of each draw.
    `diagnostics` holds the method's figures (acceptance, ess, rhat, autocorrelation, seconds, ...); a
    resumed emcee calibration's seconds add the stored steps' seconds of the sessions before it.
    """

    names: tuple[str, ...]
    draws: dict[str, np.ndarray]
    weights: np.ndarray
    log_likelihood: np.ndarray
    method: str
    until: str
    diagnostics: dict = field(default_factory=dict)
    run_id: int | None = None
    source: str = ""
    """Where the draws were read from when not from a store (e.g. 'shipped posterior NAME.posterior.csv')."""

    def __len__(self) -> int:
        return len(self.weights)

    @property
    def label(self) -> str:
        """What the output calls these draws: 'posterior of calibration run 7', or the shipped file's
        'shipped posterior NAME.posterior.csv', with the month it was calibrated to."""
        where = self.source or f"posterior of calibration run {self.run_id}"
        return f"{where} (calibrated to {self.until})"

    def resample(self, runs: int, seed: int) -> np.ndarray:
        """(runs,) indices of draws: a systematic resample by weight (Kitagawa 1996), in a random order
        fixed by `seed`."""
        check_seed(seed)
        rng = np.random.default_rng([_RESAMPLE_STREAM, seed])
        cumulative = np.cumsum(self.weights)
        points = (rng.random() + np.arange(runs)) / runs
        picks = np.minimum(np.searchsorted(cumulative, points * cumulative[-1]), len(self.weights) - 1)
        return rng.permutation(picks)

    def parameter_draws(self, runs: int, seed: int, fixed: Collection[str] = ()) -> dict[str, np.ndarray]:
        """`runs` draws {name: (runs,)} from the posterior (see `resample`) of the parameters not in `fixed`
        (those a caller sets to a value); the same seed gives the same draws."""
        picks = self.resample(runs, seed)
        return {name: self.draws[name][picks] for name in self.names if name not in fixed}

    def per_run_parameters(
        self, scenario: Scenario, runs: int, seed: int, fixed: Collection[str] = ()
    ) -> dict[str, np.ndarray]:
        """Posterior draws as the per-run arrays `simulate` takes (cf. `sampling.per_run_parameters`);
        parameters in `fixed` keep their value. Raises ValueError if the posterior's parameters are
        not uncertain parameters of `scenario`."""
        check_matches(self, scenario)
        return expand_draws(scenario, self.parameter_draws(runs, seed, fixed))

    def summary(self) -> dict[str, tuple[float, float, float]]:
        """Weighted median and 5-95% interval of each parameter: {name: (median, low, high)}."""
        return {name: weighted_band(self.draws[name], self.weights) for name in self.names}


def weighted_band(values: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """(median, 5%, 95%) weighted quantiles (inverse of the weighted empirical CDF)."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    cumulative /= cumulative[-1]
    at = np.searchsorted(cumulative, [0.5, 0.05, 0.95])
    picked = values[order][np.minimum(at, len(values) - 1)]
    return float(picked[0]), float(picked[1]), float(picked[2])


def prior_bands(scenario: Scenario, names: Collection[str]) -> dict[str, tuple[float, float, float]]:
    """(median, 5%, 95%) of each parameter's declared distribution (the prior), in draw terms."""
    from aftermath.scenario.validate import frozen_distribution

    return {
        name: tuple(float(x) for x in frozen_distribution(
            scenario.parameters[name].distribution).ppf([0.5, 0.05, 0.95]))  # type: ignore[arg-type,misc]
        for name in names
    }


def check_matches(posterior: Posterior, scenario: Scenario) -> None:
    """Raise ValueError unless every posterior parameter is an uncertain parameter of `scenario`."""
    missing = [name for name in posterior.names if name not in uncertain_parameters(scenario)]
    if missing:
        raise ValueError(
            f"the posterior{'' if posterior.run_id is None else f' of run {posterior.run_id}'} has parameters "
            f"{', '.join(missing)} that are not uncertain parameters of scenario {scenario.name!r}"
        )


def model_until(scenario: Scenario, end: int) -> CompiledModel:
    """`scenario` compiled to run only up to month index `end` (no later than its own end): what a
    comparison with observations dated up to `end` needs, at a fraction of the cost of the whole horizon."""
    end = max(min(end, scenario.time.end), scenario.time.start)
    return compile_model(scenario.model_copy(update={"time": scenario.time.model_copy(update={"end": end})}))


class Problem:
    """The calibration problem: log posterior of batches of points z (walkers, parameters) in
    standard-normal coordinates, through the deterministic engine run to the cutoff."""

    def __init__(self, scenario: Scenario, until: str) -> None:
        cutoff = parse_month(until)
        self.scenario = scenario
        self.names = uncertain_parameters(scenario)
        self.likelihood: Likelihood = likelihood(scenario, cutoff)
        if not len(self.likelihood):
            raise ValueError(f"scenario {scenario.name!r} has no observations dated up to {until}")
        self.model = model_until(scenario, max(min(scenario.time.end, cutoff),
                                               max(parse_month(d) for d in self.likelihood.dates)))
        self.evaluations = 0
        self.active = np.arange(len(self.names))
        """Positions in `names` of the parameters the sampler moves (see `screen`)."""

    def screen(self, seed: int, points: int = SCREEN_POINTS) -> list[str]:
        """Keep in `active` only the parameters that change some observed outcome; returns the others.

        At `points` random points of the prior, each parameter in turn is moved by one prior standard
        deviation (z + 1); one that changes no model value at any observation's date cannot be informed
        by the data, so its posterior is its prior and it is drawn from the prior instead of sampled
        (fewer dimensions for the sampler). A parameter that acts only elsewhere in the prior (e.g. past
        a threshold the points miss) would be taken as inert: `points` trades that risk against runs.
        """
        dims = len(self.names)
        rng = np.random.default_rng([_SCREEN_STREAM, seed])
        base = rng.standard_normal((points, dims))
        moved = np.repeat(base, dims, axis=0)
        moved[np.arange(points * dims), np.tile(np.arange(dims), points)] += 1.0
        values = self.model_values(np.concatenate([base, moved]))
        reference = np.repeat(values[:points], dims, axis=0)
        changed = ~np.isclose(values[points:], reference, rtol=1e-9, atol=0.0, equal_nan=True)
        informed = changed.any(axis=1).reshape(points, dims).any(axis=0)
        self.active = np.flatnonzero(informed)
        return [name for name, keep in zip(self.names, informed, strict=True) if not keep]

    def full(self, z: np.ndarray) -> np.ndarray:
        """Points in the active coordinates (walkers, active) as full points (walkers, parameters), the
        inert coordinates at their prior median (0)."""
        z = np.atleast_2d(z)
        full = np.zeros((z.shape[0], len(self.names)))
        full[:, self.active] = z
        return full

    def theta(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """Parameter draws {name: (walkers,)} of full points z (walkers, parameters)."""
        from scipy.special import ndtr

        return draws_from_unit(self.scenario, self.names, ndtr(np.atleast_2d(z)))

    def model_values(self, z: np.ndarray) -> np.ndarray:
        """(walkers, observations) model values of full points z; NaN rows where the model fails."""
        draws = self.theta(z)
        n = z.shape[0]
        self.evaluations += n
        try:
            dataset = simulate(self.model, replicates=n, engine="deterministic",
                               parameters=expand_draws(self.scenario, draws), keep_compartments=False)
        except ModelError:
            if n == 1:
                return np.full((1, len(self.likelihood)), np.nan)
            return np.concatenate([self.model_values(z[i:i + 1]) for i in range(n)])
        return self.likelihood.model_values(dataset)

    def log_posterior(self, z: np.ndarray) -> np.ndarray:
        """(walkers,) log posterior (up to a constant) of points z (walkers, active parameters)."""
        z = np.atleast_2d(z)
        return self.likelihood.log_likelihood(self.model_values(self.full(z))) - 0.5 * np.sum(z * z, axis=1)


def calibrate(
    scenario: Scenario,
    *,
    until: str = DEFAULT_UNTIL,
    method: Method = "laplace",
    draws: int = 1000,
    seed: int = 0,
    store: Store | None = None,
    progress: Callable[[int, int], None] | None = None,
    walkers: int | None = None,
    steps: int | None = None,
    chunk: int | None = None,
    resume: int | None = None,
    scenario_text: str | None = None,
) -> Posterior:
    """Calibrate `scenario`'s uncertain parameters to its observations dated up to `until` (YYYY-MM).

    method "laplace" weights `steps` (default 4000) proposals from the Laplace approximation at the mode;
    method "emcee" runs `steps` (default 1000) steps of `walkers` (default 2 * parameters + 2, at least
    32, even) walkers; method "prior" weights `steps` (default 2000) prior draws by likelihood.
    `progress(done, total)` is told the steps (or draws) done so far. With a `store` the calibration
    is a stored run (its chain written every `chunk` steps, default steps / 20); `resume` continues
    the stored calibration with that run id (its own settings, except that `steps` given with it sets a new
    total: more extends the chain, no more than are stored ends it with the stored steps; `scenario` must
    be the same scenario).
    `scenario_text` is what the store keeps (default: the scenario as JSON, which reads back as YAML).

    Raises ValueError for a bad request (unknown method, walkers for a method other than emcee, no
    observations up to `until`, a resume of a different scenario), StoreError for a store problem,
    ResourceError for a bad seed.
    """
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")
    month_label(parse_month(until))
    check_seed(seed)
    if draws < 1:
        raise ValueError("draws must be at least 1")
    if walkers is not None and method != "emcee" and resume is None:
        raise ValueError(f"walkers are for method 'emcee'; method {method!r} has none")
    problem = Problem(scenario, until)
    if not problem.names:
        raise ValueError(f"scenario {scenario.name!r} has no uncertain parameters to calibrate")
    run_id, stored, earlier = None, None, 0.0
    if store is not None and resume is not None:
        settings, _ = store.calibration(resume)
        row = store.run(resume).row
        if row["scenario_hash"] != scenario_hash(scenario) or settings["names"] != problem.names:
            raise ValueError(
                f"run {resume} calibrated scenario {row['scenario']!r} ({row['scenario_hash']}), not this one "
                f"({scenario.name!r}, {scenario_hash(scenario)}); resume it with the scenario it was started with"
            )
        run_id, stored, earlier = resume, store.chain(resume), store.calibration_seconds(resume)
        if steps is not None and settings["method"] == "emcee":
            settings = {**settings, "steps": steps}
        problem.active = np.array([problem.names.index(name) for name in settings["active"]], dtype=np.int64)
    else:
        settings = _settings(problem, method, until, draws, seed, walkers, steps, chunk)
    if store is not None and run_id is None:
        run_id = store.create_calibration(
            scenario.name, scenario._source, scenario_text or scenario.model_dump_json(by_alias=True),
            scenario_hash(scenario), seed, method, np.datetime64(month_label(scenario.time.start), "M"),
            {"month": 1, "quarter": 3, "year": 12}[scenario.time.step], settings,
        )
    if settings["method"] == "prior":
        posterior = _importance(problem, settings, run_id, progress)
    elif settings["method"] == "laplace":
        posterior = _laplace(problem, settings, run_id, progress)
    else:
        positions, log_posterior, seconds = _run_emcee(problem, settings, store, run_id, stored, progress)
        posterior = _from_chain(problem, settings, positions, log_posterior, run_id, earlier + seconds)
    if store is not None and run_id is not None:
        _store_posterior(store, run_id, scenario, posterior)
    return posterior


def _settings(problem: Problem, method: str, until: str, draws: int, seed: int, walkers: int | None,
              steps: int | None, chunk: int | None) -> dict:
    """A new calibration's settings (what the store keeps to resume it), after screening for emcee and laplace."""
    prior, mcmc = method == "prior", method == "emcee"
    inert = [] if prior else problem.screen(seed)
    if not prior and not len(problem.active):
        raise ValueError("no uncertain parameter changes any observed outcome: there is nothing to calibrate")
    dims = len(problem.active)
    settings = {
        "method": method, "until": until, "draws": draws, "seed": seed, "names": problem.names,
        "active": [problem.names[i] for i in problem.active], "inert": inert,
        "walkers": (walkers or max(MIN_WALKERS, 2 * dims + 2)) if mcmc else 1,
        "steps": steps or {"prior": 2000, "laplace": 4000, "emcee": 1000}[method],
    }
    settings["chunk"] = (chunk or max(1, settings["steps"] // 20)) if mcmc else settings["steps"]
    if mcmc and (settings["walkers"] < 2 * dims or settings["walkers"] % 2):
        raise ValueError(f"walkers must be even and at least twice the {dims} parameters the data inform")
    if settings["steps"] < 2:
        raise ValueError("steps must be at least 2")
    return settings


def _run_emcee(problem: Problem, settings: dict, store: Store | None, run_id: int | None, stored, progress):
    import emcee

    walkers, total, chunk, dims = settings["walkers"], settings["steps"], settings["chunk"], len(problem.active)
    started = time.perf_counter()
    moves = [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    sampler = emcee.EnsembleSampler(walkers, dims, problem.log_posterior, vectorize=True, moves=moves)
    if stored is not None and stored[2] is not None:
        positions, log_posterior, state_text = stored
        chain, lp = [positions], [log_posterior]
        state = emcee.State(positions[-1], log_prob=log_posterior[-1], random_state=_state_from_text(state_text))
        done = positions.shape[0]
    else:
        rng = np.random.default_rng([_INITIAL_STREAM, settings["seed"]])
        start = rng.standard_normal((walkers, dims))
        seeded = np.random.RandomState(np.random.SeedSequence([_INITIAL_STREAM, settings["seed"]]).generate_state(4))
        state = emcee.State(start, log_prob=problem.log_posterior(start), random_state=seeded.get_state())
        chain, lp, done = [], [], 0
    if progress is not None:
        progress(done, total)
    while done < total:
        steps = min(chunk, total - done)
        tick = time.perf_counter()
        sampler.reset()
        state = sampler.run_mcmc(state, steps, progress=False)
        positions, log_posterior = sampler.get_chain(), sampler.get_log_prob()
        chain.append(positions)
        lp.append(log_posterior)
        if store is not None and run_id is not None:
            store.write_chain(run_id, done, positions, log_posterior, _state_to_text(state.random_state),
                              time.perf_counter() - tick)
        done += steps
        if progress is not None:
            progress(done, total)
    settings_seconds = time.perf_counter() - started
    return np.concatenate(chain), np.concatenate(lp), settings_seconds


def _state_to_text(state: tuple) -> str:
    name, keys, pos, has_gauss, cached = state
    return json.dumps([name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)])


def _state_from_text(text: str) -> tuple:
    name, keys, pos, has_gauss, cached = json.loads(text)
    return name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached


def split_rhat(chains: np.ndarray) -> np.ndarray:
    """Split R-hat per parameter of chains (steps, chains, parameters) (BDA3 eq. 11.4): each chain's two
    halves as separate chains; between- over within-chain variance. Near 1 when they agree; NaN for
    fewer than 4 steps."""
    half = chains.shape[0] // 2
    if half < 2:
        return np.full(chains.shape[2], np.nan)
    split = np.concatenate([chains[:half], chains[half:2 * half]], axis=1)
    n = split.shape[0]
    within = split.var(axis=0, ddof=1).mean(axis=0)
    between = n * split.mean(axis=0).var(axis=0, ddof=1)
    pooled = (n - 1) / n * within + between / n
    return np.sqrt(pooled / np.maximum(within, 1e-300))


def _by_name(names: list[str], values: np.ndarray) -> dict[str, float | None]:
    """{name: value} as JSON keeps it: an undefined (NaN) figure is None."""
    return {name: float(v) if np.isfinite(v) else None for name, v in zip(names, values, strict=True)}


def _from_chain(problem: Problem, settings: dict, positions: np.ndarray, log_posterior: np.ndarray,
                run_id: int | None, seconds: float) -> Posterior:
    import emcee

    steps, walkers, dims = positions.shape
    kept = positions[steps // 2:]
    kept_lp = log_posterior[steps // 2:]
    flat = kept.reshape(-1, dims)
    picks = np.linspace(0, len(flat) - 1, min(settings["draws"], len(flat))).round().astype(np.int64)
    z = problem.full(flat[picks])
    inert = np.setdiff1d(np.arange(len(problem.names)), problem.active)
    rng = np.random.default_rng([_INERT_STREAM, settings["seed"]])
    z[:, inert] = rng.standard_normal((len(z), len(inert)))
    theta = problem.theta(z)
    log_likelihood = kept_lp.reshape(-1)[picks] + 0.5 * np.sum(flat[picks] ** 2, axis=1)
    moved = np.any(positions[1:] != positions[:-1], axis=2)
    emcee_log = logging.getLogger("emcee")  # its too-short-chain warning: the diagnostics below say so
    level = emcee_log.level
    emcee_log.setLevel(logging.ERROR)
    try:
        tau = emcee.autocorr.integrated_time(kept, quiet=True) if len(kept) > 1 else np.full(dims, np.nan)
    finally:
        emcee_log.setLevel(level)
    active = settings["active"]
    diagnostics = {
        "seconds": seconds,
        "walkers": walkers,
        "steps": steps,
        "burn_in": steps // 2,
        "acceptance": float(moved.mean()) if steps > 1 else None,
        "inert": settings["inert"],
        "autocorrelation": _by_name(active, tau),
        "ess": _by_name(active, kept.shape[0] * walkers / np.maximum(tau, 1.0)),
        "rhat": _by_name(active, split_rhat(kept)),
        "observations": len(problem.likelihood),
    }
    return Posterior(
        names=tuple(problem.names), draws=theta, weights=np.full(len(z), 1.0 / len(z)),
        log_likelihood=log_likelihood, method=settings["method"], until=settings["until"],
        diagnostics=diagnostics, run_id=run_id,
    )


def _store_posterior(store: Store, run_id: int, scenario: Scenario, posterior: Posterior) -> None:
    parameters = scenario.parameters
    store.write_posterior(
        run_id, posterior.draws, {n: bool(parameters[n].distribution.relative) for n in posterior.names},  # type: ignore[union-attr]
        {n: parameters[n].unit for n in posterior.names},
        {**posterior.diagnostics, "weights": posterior.weights.tolist(),
         "log_likelihood": posterior.log_likelihood.tolist()},
    )


def _importance(problem: Problem, settings: dict, run_id: int | None, progress) -> Posterior:
    """Prior draws (Latin hypercube) weighted by their likelihood; `draws` of them kept, resampled by
    weight (systematic), so the stored posterior is equally weighted."""
    from scipy.special import ndtri

    started = time.perf_counter()
    samples = settings["steps"]
    unit = np.clip(unit_samples(len(problem.names), samples, "lhs", settings["seed"]), TAIL, 1 - TAIL)
    z = ndtri(unit)
    prior = problem.theta(z)
    log_likelihood = _in_batches(lambda part: problem.likelihood.log_likelihood(problem.model_values(part)), z,
                                 progress)
    finite = np.isfinite(log_likelihood)
    if not finite.any():
        raise ValueError("no prior draw gives the observations a positive likelihood")
    weights = np.where(finite, np.exp(log_likelihood - log_likelihood[finite].max()), 0.0)
    weights /= weights.sum()
    return _resampled(problem, settings, prior, log_likelihood, weights, run_id, {
        "seconds": time.perf_counter() - started, "samples": samples, "ess": float(1.0 / np.sum(weights ** 2)),
        "observations": len(problem.likelihood)})


def _in_batches(evaluate: Callable[[np.ndarray], np.ndarray], points: np.ndarray, progress) -> np.ndarray:
    """`evaluate` (points (n, d) -> (n,)) over the rows of `points`, IMPORTANCE_BATCH engine runs at a time,
    telling `progress(done, total)` after each batch."""
    pieces = []
    for first in range(0, len(points), IMPORTANCE_BATCH):
        pieces.append(evaluate(points[first:first + IMPORTANCE_BATCH]))
        if progress is not None:
            progress(min(first + IMPORTANCE_BATCH, len(points)), len(points))
    return np.concatenate(pieces)


def _resampled(problem: Problem, settings: dict, draws: dict[str, np.ndarray], log_likelihood: np.ndarray,
               weights: np.ndarray, run_id: int | None, diagnostics: dict) -> Posterior:
    """Weighted draws {name: (n,)} as the stored, equally weighted posterior: `settings['draws']` of them,
    resampled by weight (systematic, seeded by the calibration's seed)."""
    weighted = Posterior(names=tuple(problem.names), draws=draws, weights=weights, log_likelihood=log_likelihood,
                         method=settings["method"], until=settings["until"])
    picks = weighted.resample(settings["draws"], settings["seed"])
    return Posterior(
        names=tuple(problem.names), draws={n: d[picks] for n, d in draws.items()},
        weights=np.full(settings["draws"], 1.0 / settings["draws"]), log_likelihood=log_likelihood[picks],
        method=settings["method"], until=settings["until"], run_id=run_id, diagnostics=diagnostics,
    )


@dataclass(frozen=True)
class LaplaceFit:
    """The Gaussian (Laplace) approximation of the posterior at its mode, in the active z coordinates."""

    mode: np.ndarray
    """(active,) the posterior mode (MAP) in prior standard deviations."""
    covariance: np.ndarray
    """(active, active) the inverse of the Gauss-Newton precision at the mode."""
    log_posterior: float
    """The log posterior at the mode (up to the constant of `Problem.log_posterior`)."""
    iterations: int
    message: str
    """The optimiser's reason for stopping."""


def laplace_fit(problem: Problem) -> LaplaceFit:
    """The mode of `problem`'s posterior in its active coordinates, from the prior median, by L-BFGS-B with
    forward-difference gradients (one engine batch of active + 1 points each), and the Gaussian approximation
    there: precision I + J' C J (Gauss-Newton: J (observations, active) the forward-difference Jacobian of
    the log model values, C each observation's curvature in log m, `Likelihood.log_curvature`, at least 0).

    Raises ValueError when the model fails or gives the observations zero likelihood at the prior median.
    """
    from scipy import optimize

    dims = len(problem.active)
    offsets = np.vstack([np.zeros(dims), DIFFERENCE_STEP * np.eye(dims)])

    def negative_and_gradient(z: np.ndarray) -> tuple[float, np.ndarray]:
        values = problem.log_posterior(z + offsets)
        if not np.isfinite(values[0]):
            return np.inf, np.zeros(dims)
        gradient = (values[1:] - values[0]) / DIFFERENCE_STEP
        return -float(values[0]), -np.where(np.isfinite(gradient), gradient, 0.0)

    start = np.zeros(dims)
    if not np.isfinite(problem.log_posterior(start[None, :])[0]):
        raise ValueError("the model fails or gives the observations zero likelihood at the priors' medians; "
                         "use --method emcee")
    result = optimize.minimize(negative_and_gradient, start, jac=True, method="L-BFGS-B",
                               options={"maxiter": MODE_ITERATIONS})
    mode = result.x
    values = problem.model_values(problem.full(mode + offsets))
    logs = np.log(np.maximum(np.nan_to_num(values, nan=FLOOR), FLOOR))
    jacobian = np.nan_to_num((logs[1:] - logs[0]).T / DIFFERENCE_STEP)
    curvature = np.clip(np.nan_to_num(problem.likelihood.log_curvature(values[0])), 0.0, None)
    precision = np.eye(dims) + jacobian.T @ (curvature[:, None] * jacobian)
    return LaplaceFit(mode, np.linalg.inv(precision), -float(result.fun), int(result.nit), str(result.message))


def _laplace(problem: Problem, settings: dict, run_id: int | None, progress) -> Posterior:
    """Importance sampling of the posterior with the Laplace approximation (widened) as the proposal; the
    weights Pareto-smoothed (arviz.psislw), then resampled to `draws` equally weighted draws."""
    import warnings

    from scipy import stats

    with warnings.catch_warnings():  # arviz announces its coming refactor on import
        warnings.simplefilter("ignore", FutureWarning)
        from arviz import psislw

    started = time.perf_counter()
    samples, dims = settings["steps"], len(problem.active)
    if progress is not None:
        progress(0, samples)
    fit = laplace_fit(problem)
    proposal = stats.multivariate_normal(fit.mode, PROPOSAL_INFLATION * fit.covariance)
    rng = np.random.default_rng([_PROPOSAL_STREAM, settings["seed"]])
    z = proposal.rvs(size=samples, random_state=rng).reshape(samples, dims)
    log_posterior = _in_batches(problem.log_posterior, z, progress)
    finite = np.isfinite(log_posterior)
    if not finite.any():
        raise ValueError("no proposal gives the observations a positive likelihood; use --method emcee")
    log_weights = log_posterior - np.atleast_1d(proposal.logpdf(z))
    # a proposal where the model fails has weight 0: far below every other, for the smoothing
    log_weights = np.where(finite, log_weights, log_weights[finite].min() - 1000.0)
    smoothed, pareto_k = psislw(log_weights, reff=1.0)
    weights = np.exp(smoothed - smoothed.max())
    weights /= weights.sum()
    full = problem.full(z)
    inert = np.setdiff1d(np.arange(len(problem.names)), problem.active)
    full[:, inert] = np.random.default_rng([_INERT_STREAM, settings["seed"]]).standard_normal((samples, len(inert)))
    diagnostics = {
        "seconds": time.perf_counter() - started, "samples": samples, "ess": float(1.0 / np.sum(weights ** 2)),
        # k-hat is undefined (inf) with too few proposals for a tail fit: None, as JSON keeps it
        "pareto_k": float(pareto_k) if np.isfinite(pareto_k) else None,
        "mode_log_posterior": fit.log_posterior, "iterations": fit.iterations, "optimiser": fit.message,
        "inflation": PROPOSAL_INFLATION, "evaluations": problem.evaluations,
        "laplace_sd": _by_name(settings["active"], np.sqrt(np.diag(fit.covariance))), "inert": settings["inert"],
        "observations": len(problem.likelihood),
    }
    log_likelihood = log_posterior + 0.5 * np.sum(z * z, axis=1)
    return _resampled(problem, settings, problem.theta(full), log_likelihood, weights, run_id, diagnostics)


def load_posterior(store: Store, run_id: int) -> Posterior:
    """The posterior of a finished calibration run. Raises StoreError if the run is not a finished
    calibration."""
    settings, diagnostics = store.calibration(run_id)
    if diagnostics is None:
        raise StoreError(
            f"{store.path}: calibration {run_id} has not finished; "
            f"'aftermath calibrate --resume {run_id}' continues it"
        )
    run = store.run(run_id)
    names = tuple(settings["names"])
    weights = np.asarray(diagnostics.pop("weights"), dtype=float)
    log_likelihood = np.asarray(diagnostics.pop("log_likelihood"), dtype=float)
    return Posterior(
        names=names, draws={n: run.draws[n] for n in names}, weights=weights, log_likelihood=log_likelihood,
        method=settings["method"], until=settings["until"], diagnostics=diagnostics, run_id=run_id,
    )

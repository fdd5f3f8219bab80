"""Global sensitivity analysis through SALib, with the design each method needs and honest uncertainty.

Methods (SALib's samplers and analysers, not rewritten here):

- `sobol`: Saltelli's extension of the Sobol sequence, N * (D + 2) runs (N * (2D + 2) with second
  order); first-order S1 and total-order ST (and S2), bootstrap confidence intervals (Saltelli et
  al. 2010, Comput. Phys. Commun. 181:259).
- `morris`: N elementary-effect trajectories of D + 1 runs on a 4-level grid (Morris 1991;
  Campolongo et al. 2007's mu*); a screening measure, not a variance share.
- `rbd-fast`: N Latin-hypercube runs, first order only (Tarantola et al. 2006; Plischke 2010).
- `delta`: N Latin-hypercube runs, the moment-independent delta (Borgonovo 2007; Plischke et al. 2013),
  on the sample as drawn (SALib's 'raw' bootstrap).

Every index comes with a 95% bootstrap interval. An index is *significant* when its interval lies
above zero; for the given-data methods (rbd-fast, delta) it must also lie above the index of a
dummy input (a column of random numbers the model never sees, so its index is pure estimation
noise; it costs no runs). A parameter that cannot affect an outcome therefore reads "not
significant". Too small a sample is refused with the minimum named.

Inputs live in the unit cube (each parameter's quantile), mapped through the parameter's declared
distribution, so any distribution can be analysed; quantiles are kept within [0.001, 0.999].

A design run into a run store is an ordinary run (kind 'sensitivity', sampler 'design'; resumable
like any run) with the design in its metadata, so its indices can be recomputed from the store for
any outcome and date (`stored_sensitivity`) without running anything again.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from aftermath.decisions.evaluate import DecisionError, Target, evaluate_targets, scenario_experiment
from aftermath.decisions.stored import stored_cases
from aftermath.experiments.executors import ExecutorSpec
from aftermath.experiments.runner import SERIAL, run_stored, stored_experiment
from aftermath.experiments.sampling import DESIGN, draws_from_unit, uncertain_parameters
from aftermath.scenario.loader import parse_scenario
from aftermath.store import Store

Method = Literal["sobol", "morris", "rbd-fast", "delta"]
METHODS: tuple[str, ...] = ("sobol", "morris", "rbd-fast", "delta")
HARMONICS = 10
"""RBD-FAST's interference parameter M."""
MINIMUM = {"sobol": 64, "morris": 10, "rbd-fast": 200, "delta": 200}
"""Smallest --samples each method accepts, and why:
sobol: base samples N (a power of two for the Sobol sequence's balance); below 64 the bootstrap
intervals of ST are wider than most indices. morris: trajectories; 10 is the lower end of the
10-20 Campolongo et al. recommend. rbd-fast: runs; a parameter without effect scores about 2M/N by
chance (M = 10 harmonics), so N = 200 keeps that floor at 0.1. delta: runs; its kernel density
estimates need a few hundred points (Plischke et al. 2013)."""
MORRIS_LEVELS = 4
QUANTILE_MARGIN = 1e-3
BOOTSTRAP = 200
DELTA_BOOTSTRAP = 30
"""Resamples of the delta estimator, which fits (M + 1) kernel densities per input for each one (and SALib
1.6 does it twice, balanced and raw): 30 instead of SALib's 100 keeps it to a few seconds of CPU per input
and output (DELTA_SECONDS) while the interval still separates a driver from the dummy input."""
DELTA_SECONDS = (0.18, 0.00033)
"""CPU seconds of delta's analysis per input and output, a + b * runs, measured with SALib 1.6 on one
BLAS thread of the 2-core development machine (13 s for 200 runs x 53 inputs, 27 s for 1,000 runs).
Without the one-thread limit OpenBLAS spun threads on each tiny solve: 75 s for 200 runs at 10
resamples on the same loaded machine."""
SLOW_ANALYSIS = 30.0
"""Seconds of analysis above which the caller is told how long to expect."""
CONFIDENCE = 0.95
DUMMY = "(dummy)"


def design_size(method: Method, samples: int, parameters: int, second_order: bool = False) -> int:
    """How many model runs a design of `samples` needs."""
    if method == "sobol":
        return samples * (2 * parameters + 2 if second_order else parameters + 2)
    if method == "morris":
        return samples * (parameters + 1)
    return samples


def check_sample_size(method: Method, samples: int, parameters: int, second_order: bool = False) -> None:
    """Raise DecisionError when the design is too small for the method, naming the minimum."""
    if method not in METHODS:
        raise DecisionError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if parameters < 1:
        raise DecisionError("no uncertain parameters to analyse; expected parameters with a 'distribution'")
    if second_order and method != "sobol":
        raise DecisionError("second-order indices need --method sobol")
    minimum = MINIMUM[method]
    unit = {"sobol": "base samples", "morris": "trajectories"}.get(method, "parameter samples")
    if samples < minimum:
        raise DecisionError(
            f"{method} needs at least {minimum} {unit} (asked {samples}); with {parameters} parameters that is "
            f"{design_size(method, minimum, parameters, second_order)} model runs"
        )
    if method == "sobol" and samples & (samples - 1):
        raise DecisionError(f"sobol needs a power of two of base samples (asked {samples}); "
                            f"expected e.g. {2 ** math.ceil(math.log2(samples))}")


@dataclass(frozen=True)
class Design:
    """A method's sample of the unit cube (runs, parameters) and what analysing it needs."""

    method: Method
    names: list[str]
    samples: int
    second_order: bool
    seed: int
    points: np.ndarray
    dummy: np.ndarray | None = field(default=None, repr=False)
    """For given-data methods: a column of random numbers no run uses (the noise floor)."""

    def metadata(self) -> dict:
        """What `design` needs to make the same design again (recorded with a stored design run)."""
        return {"method": self.method, "parameters": self.names, "samples": self.samples,
                "second_order": self.second_order, "seed": self.seed, "quantile_margin": QUANTILE_MARGIN}

    def problem(self, with_dummy: bool = False) -> dict:
        names = [*self.names, DUMMY] if with_dummy else list(self.names)
        return {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}


def design(method: Method, names: Sequence[str], samples: int, second_order: bool = False, seed: int = 0) -> Design:
    """The method's design over the unit cube; raises DecisionError when too small."""
    names = list(names)
    check_sample_size(method, samples, len(names), second_order)
    base = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    dummy = None
    with warnings.catch_warnings(record=True):  # SALib's advice on sizes is checked above in our own words
        if method == "sobol":
            from SALib.sample import sobol

            points = sobol.sample(base, samples, calc_second_order=second_order, seed=seed)
        elif method == "morris":
            from SALib.sample import morris

            points = morris.sample(base, samples, num_levels=MORRIS_LEVELS, seed=seed)
        else:
            from SALib.sample import latin

            points = latin.sample(base, samples, seed=seed)
            dummy = np.random.default_rng([seed, 7]).random(samples)
    return Design(method, names, samples, second_order, seed, np.asarray(points, dtype=float), dummy)


Stage = Callable[[str, int | None, str], None]
"""Told a new phase of the work: (what, how many units or None, the unit); `progress` then counts its units."""


def analyse(plan: Design, outputs: np.ndarray, labels: Sequence[str],
            progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Indices of each output column for each parameter with bootstrap intervals.

    `outputs` (runs, len(labels)) in design order; `progress` is told each column analysed (a large
    design takes seconds per column). Returns a long table: output, parameter, index (S1, ST, S2,
    mu_star, sigma, delta), value, low, high, significant. An output that does not vary gets no rows
    (nothing to apportion).
    """
    outputs = np.asarray(outputs, dtype=float).reshape(len(plan.points), -1)
    if not np.isfinite(outputs).all():
        raise DecisionError("some runs gave non-finite outcomes; expected finite numbers to analyse")
    rows: list[dict] = []
    for column, label in enumerate(labels):
        y = outputs[:, column]
        if np.ptp(y) > 1e-12 * max(1.0, float(np.abs(y).max())):
            rows += _analysed(plan, y, label)
        if progress is not None:
            progress(1)
    columns = ["output", "parameter", "index", "value", "low", "high", "significant"]
    return pd.DataFrame(rows, columns=columns)


def _analysed(plan: Design, y: np.ndarray, label: str) -> list[dict]:
    """`_indices` of one output, quietly and reproducibly:"""
    # SALib's warnings are kept from the terminal (it resets the filters); one BLAS thread (DELTA_SECONDS);
        # numpy's global random state as it was (SALib's delta reseeds it)
    state = np.random.get_state()
    try:
        with warnings.catch_warnings(record=True), threadpool_limits(limits=1):
            return _indices(plan, y, label)
    finally:
        np.random.set_state(state)


def analysis_seconds(plan: Design, outputs: int) -> float:
    """About how many CPU seconds `analyse` takes for `outputs` columns: only delta's is long
    (DELTA_SECONDS); the others take well under a second per output."""
    if plan.method != "delta":
        return 0.0
    low, per_run = DELTA_SECONDS
    return outputs * (len(plan.names) + 1) * (low + per_run * len(plan.points))


def tell_if_slow(plan: Design, outputs: int, notice: Callable[[str], None] | None) -> None:
    """Tell `notice` the expected minutes when analysing `outputs` columns takes over SLOW_ANALYSIS seconds."""
    seconds = analysis_seconds(plan, outputs)
    if notice is not None and seconds > SLOW_ANALYSIS:
        notice(f"{plan.method}: the analysis takes about {seconds / 60:.0f} min of CPU after the runs "
               f"({outputs} outcome-dates x {len(plan.names)} parameters; each of {DELTA_BOOTSTRAP} resamples "
               "re-fits the densities); fewer --date or --outcome make it shorter")


def _row(label: str, parameter: str, index: str, value: float, conf: float, floor: float = 0.0) -> dict:
    low, high = value - conf, value + conf
    return {"output": label, "parameter": parameter, "index": index, "value": float(value),
            "low": float(low), "high": float(high), "significant": bool(low > floor)}


def analysis_seed(seed: int) -> int:
    """The bootstrap seed SALib gets: derived from the design's seed and never 0, because SALib 1.6's
    sobol and delta analysers take a seed of 0 as none (`if seed:`) and would resample unseeded."""
    return int(np.random.SeedSequence([seed, 0x5A1B]).generate_state(1, np.uint32)[0]) or 1


def _indices(plan: Design, y: np.ndarray, label: str) -> list[dict]:
    seed = analysis_seed(plan.seed)
    if plan.method == "sobol":
        from SALib.analyze import sobol

        found = sobol.analyze(plan.problem(), y, calc_second_order=plan.second_order, num_resamples=BOOTSTRAP,
                              conf_level=CONFIDENCE, seed=seed)
        rows = [_row(label, name, index, found[index][i], found[f"{index}_conf"][i])
                for index in ("S1", "ST") for i, name in enumerate(plan.names)]
        if plan.second_order:
            for i, first in enumerate(plan.names):
                for j in range(i + 1, len(plan.names)):
                    rows.append(_row(label, f"{first} x {plan.names[j]}", "S2", found["S2"][i, j],
                                     found["S2_conf"][i, j]))
        return rows
    if plan.method == "morris":
        from SALib.analyze import morris

        found = morris.analyze(plan.problem(), plan.points, y, num_resamples=BOOTSTRAP, conf_level=CONFIDENCE,
                               num_levels=MORRIS_LEVELS, seed=seed)
        return [
            row
            for i, name in enumerate(plan.names)
            for row in (_row(label, name, "mu_star", found["mu_star"][i], found["mu_star_conf"][i]),
                        _row(label, name, "sigma", found["sigma"][i], 0.0))
        ]
    assert plan.dummy is not None
    x = np.column_stack([plan.points, plan.dummy])
    problem = plan.problem(with_dummy=True)
    if plan.method == "rbd-fast":
        from SALib.analyze import rbd_fast

        found = rbd_fast.analyze(problem, x, y, M=HARMONICS, num_resamples=BOOTSTRAP, conf_level=CONFIDENCE,
                                 seed=seed)
        indices = ("S1",)
    else:
        from SALib.analyze import delta

        found = delta.analyze(problem, x, y, num_resamples=DELTA_BOOTSTRAP, conf_level=CONFIDENCE, seed=seed,
                              method="delta")
        found = {"delta": found["delta_raw"], "delta_conf": found["delta_raw_conf"]}
        indices = ("delta",)
    rows = []
    for index in indices:
        values, confs = np.asarray(found[index]), np.asarray(found[f"{index}_conf"])
        floor = max(0.0, float(values[-1] + confs[-1]))
        rows += [_row(label, name, index, values[i], confs[i], floor) for i, name in enumerate(plan.names)]
    return rows


def function_sensitivity(
    function: Callable[[np.ndarray], np.ndarray],
    bounds: dict[str, tuple[float, float]],
    method: Method,
    samples: int,
    second_order: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Sensitivity of a vectorised function of uniform inputs (Python API; e.g. a test function).

    `function` maps (runs, len(bounds)) inputs to (runs,) or (runs, k) outputs. Returns `analyse`'s table
    (outputs named y0, y1, ...).
    """
    plan = design(method, list(bounds), samples, second_order, seed)
    low = np.array([b[0] for b in bounds.values()])
    high = np.array([b[1] for b in bounds.values()])
    outputs = np.asarray(function(low + plan.points * (high - low)), dtype=float).reshape(len(plan.points), -1)
    return analyse(plan, outputs, [f"y{i}" for i in range(outputs.shape[1])])


@dataclass(frozen=True)
class ScenarioSensitivity:
    """A scenario's indices for each target (outcome at a date), and how they were made."""

    scenario: str
    method: Method
    samples: int
    runs: int
    engine: str
    targets: list[Target]
    table: pd.DataFrame
    """`analyse`'s table with the output split into outcome and date."""
    run_id: int | None = None
    """The stored design run the indices come from (None: run in memory)."""


def scenario_sensitivity(
    scenario_text: str,
    scenario_file: str,
    targets: Sequence[Target],
    method: Method = "sobol",
    samples: int = 64,
    second_order: bool = False,
    parameters: Sequence[str] | None = None,
    engine: str = "deterministic",
    replicates: int = 1,
    seed: int = 0,
    executor: ExecutorSpec = SERIAL,
    progress: Callable[[int], None] | None = None,
    started: Callable[[int], None] | None = None,
    store: Store | None = None,
    notice: Callable[[str], None] | None = None,
    stage: Stage | None = None,
) -> ScenarioSensitivity:
    """Sensitivity of each target to the scenario's uncertain parameters (or those named; either way in
    the scenario's order).

    Runs the method's design (deterministic engine by default; the stochastic engine averages
    `replicates` runs per point), into `store` as a run of kind 'sensitivity' with the design in its
    metadata when one is given (see `stored_sensitivity`), else in memory keeping only the targets.
    `started` is told the number of runs before they start (`progress` counts them), `notice` how long
    the analysis will take if that is long (see analysis_seconds), `stage` each later phase (loading the
    stored outcomes, SALib's analysis; `progress` counts its outcome-dates). Raises DecisionError (too
    small, unknown parameter or outcome) before running anything.
    """
    scenario = parse_scenario(scenario_text, scenario_file)
    uncertain = uncertain_parameters(scenario)
    names = [name for name in uncertain if name in parameters] if parameters else uncertain
    unknown = [name for name in parameters or [] if name not in uncertain]
    if unknown:
        raise DecisionError(f"{', '.join(unknown)}: not an uncertain parameter of {scenario.name!r}; "
                            f"expected one of {', '.join(uncertain)}")
    plan = design(method, names, samples, second_order, seed)
    tell_if_slow(plan, len(targets), notice)
    draws = draws_from_unit(scenario, names, plan.points, QUANTILE_MARGIN)
    experiment = scenario_experiment(scenario_text, scenario_file, draws, engine=engine, replicates=replicates,
                                     seed=seed, sampler=DESIGN)
    if store is None:
        if started is not None:
            started(experiment.members)
        values = evaluate_targets(experiment, targets, executor, progress)[0]
        return _indexed(plan, values, targets, scenario.name, engine, stage, progress)
    run_id = run_stored(store, experiment, "sensitivity", executor, progress,
                        None if started is None else lambda _, members: started(members), {"design": plan.metadata()})
    return stored_sensitivity(store, run_id, targets, stage=stage, progress=progress)


def stored_sensitivity(store: Store, run_id: int, targets: Sequence[Target],
                       notice: Callable[[str], None] | None = None, stage: Stage | None = None,
                       progress: Callable[[int], None] | None = None) -> ScenarioSensitivity:
    """The indices of a stored design run (made by `scenario_sensitivity` with a store) for any
    targets, from its stored series; nothing is run. `stage` is told each phase (loading, analysing),
    `progress` the outcome-dates analysed.

    Raises DecisionError when the run holds no design, is unfinished (resume it first), or its draws
    differ from the design made again from its metadata (another SALib); StoreError for an unknown run.
    """
    run = store.run(run_id)
    recorded = run.metadata.get("design")
    if recorded is None:
        raise DecisionError(f"run {run_id} is a {run.row['kind']} run, not a sensitivity design; expected a run made "
                            "by 'aftermath sensitivity' (for any stored run: 'aftermath feature-scores')")
    experiment = stored_experiment(run)
    plan = design(recorded["method"], recorded["parameters"], int(recorded["samples"]),
                  bool(recorded["second_order"]), int(recorded["seed"]))
    again = draws_from_unit(experiment.scenario, plan.names, plan.points, float(recorded["quantile_margin"]))
    if any(not np.allclose(again[name], run.draws.get(name, np.nan), rtol=1e-12, atol=0) for name in plan.names):
        raise DecisionError(f"run {run_id}: the {plan.method} design made again from its metadata differs from the "
                            "stored draws (another SALib version?); expected the versions that made it: "
                            f"{run.row['versions']}")
    if stage is not None:
        stage(f"loading run {run_id}'s outcomes", None, "")
    cases = stored_cases(store, run_id, targets)
    if len(cases.values) != experiment.samples:
        raise DecisionError(f"run {run_id} holds {len(cases.values)} of its {experiment.samples} design points "
                            f"(status {run.row['status']}); finish it with 'aftermath resume {run_id}'")
    tell_if_slow(plan, len(targets), notice)
    return replace(_indexed(plan, cases.values, targets, experiment.scenario.name, experiment.engine, stage,
                            progress), run_id=run_id)


def _indexed(plan: Design, values: np.ndarray, targets: Sequence[Target], scenario: str, engine: str,
             stage: Stage | None = None, progress: Callable[[int], None] | None = None) -> ScenarioSensitivity:
    if stage is not None:
        stage(f"analysing {len(plan.points):,} runs (SALib {plan.method})", len(targets), "outcome-dates")
    table = analyse(plan, values, [t.label for t in targets], progress)
    split = table["output"].str.split("@", expand=True)
    table.insert(0, "outcome", split[0] if len(table) else [])
    table.insert(1, "date", split[1] if len(table) else [])
    return ScenarioSensitivity(scenario, plan.method, plan.samples, len(plan.points), engine, list(targets),
                               table.drop(columns="output"))


def ranking(table: pd.DataFrame, index: str | None = None) -> pd.DataFrame:
    """Parameters by the main index of a sensitivity table (ST for Sobol, mu_star for Morris, S1 or
    delta otherwise), largest first, per outcome and date."""
    chosen = index or next(i for i in ("ST", "mu_star", "delta", "S1") if i in set(table["index"]))
    keys = [c for c in ("outcome", "date", "output") if c in table.columns]
    main = table[table["index"] == chosen]
    return main.sort_values([*keys, "value"], ascending=[True] * len(keys) + [False]).reset_index(drop=True)


def given_data_sensitivity(inputs: dict[str, np.ndarray], outputs: np.ndarray, labels: Sequence[str],
                           method: Method = "rbd-fast", seed: int = 0) -> pd.DataFrame:
    """RBD-FAST or delta indices of an existing sample (e.g. a stored ensemble's draws and outcomes).

    `inputs` {parameter: (runs,)}, `outputs` (runs, len(labels)). Inputs are ranked to the unit
    interval (both methods use only their order). Raises DecisionError when the sample is too small.
    """
    if method not in ("rbd-fast", "delta"):
        raise DecisionError(f"{method!r} needs its own design; expected rbd-fast or delta for an existing sample")
    names = list(inputs)
    runs = len(outputs)
    check_sample_size(method, runs, len(names))
    columns = [np.asarray(inputs[name], dtype=float) for name in names]
    points = np.column_stack([(np.argsort(np.argsort(c)) + 0.5) / runs for c in columns])
    dummy = np.random.default_rng([seed, 7]).random(runs)
    plan = Design(method, names, runs, False, seed, points, dummy)
    return analyse(plan, outputs, labels)

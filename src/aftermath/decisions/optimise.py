"""Robust policy search: lever strengths that hold up over the parameter ensemble, within a budget.

The levers are the scenario's interventions that declare a `cost` (per unit of strength, in a
declared unit); each lever's strength ranges over its `strength_range`. A policy is a vector of
strengths; its cost is sum(strength * cost), constrained to <= the budget. Each policy is run on
the same parameter samples (a Latin hypercube of the scenario's uncertainties, common to every
policy, so differences are the policy), and each objective (an outcome at a date, to minimise)
becomes one robustness number (McPhail et al. 2018, Earth's Future 6:169):

- `mean`: the mean over the samples;
- `p90`: the 90th percentile over the samples (a bad case);
- `regret`: the largest, over samples, of the policy's outcome minus the best outcome any
  evaluated policy reached in that sample (Savage's minimax regret). During the search the best
  is the best seen so far; the Pareto table's regret is recomputed against every policy evaluated;
- `satisficing`: the share of samples where the outcome stays at or below a threshold
  (`OUTCOME@DATE<=VALUE`), maximised.

The search is NSGA-II (Deb et al. 2002) from pymoo, seeded, with the budget as an inequality
constraint and a repair that scales an over-budget policy down to the budget (so evaluations go to
affordable policies); one generation's policies run as the arms of one experiment.

Given a run store, the search is recorded as a run of kind 'optimise': its parameter samples are the
common sample, each evaluated policy is an arm ('policy 0' the zero-strength baseline, then in the
order they ran) whose policies are the lever strengths, and every series of every run is kept. A
generation's arms are stored whole, in one transaction, or not at all; the run lists only whole
arms, so scenario discovery (`stored_cases` pools them: the levers' strengths are its dimensions)
works on a search that was interrupted. The search itself cannot be resumed (the optimiser's state
is not stored).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from aftermath.decisions.evaluate import (
    DecisionError,
    Target,
    check_targets,
    evaluate_targets,
    parse_target,
    scenario_experiment,
)
from aftermath.experiments.design import Arm, Experiment, layout_of, make_arm
from aftermath.experiments.executors import ExecutorSpec
from aftermath.experiments.runner import NOT_RESUMABLE, SERIAL
from aftermath.experiments.sampling import sample_draws
from aftermath.experiments.worker import TaskResult
from aftermath.scenario.loader import parse_scenario
from aftermath.scenario.schema import Scenario
from aftermath.store import Store, StoreError

Metric = Literal["mean", "p90", "regret", "satisficing"]
METRICS: tuple[str, ...] = ("mean", "p90", "regret", "satisficing")
SEARCH_KIND = "optimise"
"""The kind of a stored policy search run."""
STRENGTH_DECIMALS = 3
"""Strengths are rounded to this many decimals, so the same policy is never run twice."""
_OBJECTIVE = re.compile(r"^(?P<target>[^<]+?)\s*(?:<=\s*(?P<threshold>\S+))?$")


@dataclass(frozen=True)
class Objective:
    """An outcome at a date to keep low; `threshold` is the satisficing limit."""

    target: Target
    threshold: float | None = None

    @property
    def label(self) -> str:
        return self.target.label


def parse_objective(text: str) -> Objective:
    """'OUTCOME@YYYY-MM' or 'OUTCOME@YYYY-MM<=VALUE' as an Objective."""
    match = _OBJECTIVE.match(text.strip())
    if match is None:
        raise DecisionError(f"{text!r}: expected OUTCOME@YYYY-MM, optionally <=VALUE")
    threshold = match.group("threshold")
    try:
        value = float(threshold) if threshold is not None else None
    except ValueError:
        raise DecisionError(f"{text!r}: the threshold {threshold!r} is not a number") from None
    return Objective(parse_target(match.group("target")), value)


@dataclass(frozen=True)
class Lever:
    """An intervention the search may set: strength in [low, high], costing `cost` per unit of strength."""

    name: str
    low: float
    high: float
    cost: float
    unit: str


def levers(scenario: Scenario, names: Sequence[str] | None = None) -> list[Lever]:
    """The scenario's costed interventions (or the named ones, which must have a cost)."""
    costed = {name: i for name, i in scenario.interventions.items() if i.cost is not None}
    for name in names or []:
        if name not in scenario.interventions:
            raise DecisionError(f"no intervention {name!r} in {scenario.name!r}; expected one of "
                                f"{', '.join(scenario.interventions)}")
        if name not in costed:
            raise DecisionError(f"interventions.{name}: no 'cost'; expected cost: {{value, unit, sources or "
                                "assumption}} to use it as a lever")
    chosen = list(names) if names else list(costed)
    if not chosen:
        raise DecisionError(f"scenario {scenario.name!r} has no intervention with a 'cost'; expected at least one")
    units = {costed[name].cost.unit for name in chosen}  # type: ignore[union-attr]
    if len(units) > 1:
        raise DecisionError(f"the levers' costs are in different units ({', '.join(sorted(units))}); "
                            "expected one unit to add them up")
    return [Lever(name, *costed[name].strength_range, costed[name].cost.value,  # type: ignore[union-attr]
                  costed[name].cost.unit) for name in chosen]  # type: ignore[union-attr]


def robustness(values: np.ndarray, metric: Metric, best: np.ndarray | None = None,
               threshold: float | None = None) -> np.ndarray:
    """One robustness number per policy from its outcomes over the samples.

    `values` (policies, samples); `best` (samples,) the lowest outcome per sample (regret);
    `threshold` the satisficing limit. Lower is better except for 'satisficing' (a share).
    """
    if metric == "mean":
        return values.mean(axis=1)
    if metric == "p90":
        return np.quantile(values, 0.9, axis=1)
    if metric == "regret":
        assert best is not None
        return (values - best[None, :]).max(axis=1)
    if metric == "satisficing":
        if threshold is None:
            raise DecisionError("the satisficing metric needs a threshold: --minimise OUTCOME@DATE<=VALUE")
        return (values <= threshold).mean(axis=1)
    raise DecisionError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


@dataclass(frozen=True)
class SearchResult:
    """The Pareto set and every policy evaluated."""

    scenario: str
    levers: list[Lever]
    objectives: list[Objective]
    metric: Metric
    budget: float
    samples: int
    engine: str
    evaluations: int
    pareto: pd.DataFrame
    """One row per non-dominated feasible policy: each lever's strength, cost, each objective's
    metric, and its mean and 90th percentile for reference."""
    evaluated: pd.DataFrame
    """The same columns for every policy run (including the baseline at zero strength), in the order
    they ran (row i is arm 'policy i' of the stored run)."""
    values: np.ndarray
    """(policies, samples, objectives): each evaluated policy's objectives per parameter sample (averaged
    over replicates), the numbers the robustness metrics are made of; rows as in `evaluated`."""
    run_id: int | None = None
    """The stored search run (None: run in memory)."""


class PolicyEvaluator:
    """Runs policies (strength vectors) over a fixed parameter sample and remembers what it ran; with a
    `store`, records each batch of policies as arms of one run (see the module docstring)."""

    def __init__(self, scenario_text: str, scenario_file: str, lever_list: list[Lever], objectives: list[Objective],
                 samples: int, seed: int, engine: str, replicates: int, executor: ExecutorSpec,
                 progress: Callable[[int], None] | None, store: Store | None = None, metadata: dict | None = None,
                 started: Callable[[int], None] | None = None) -> None:
        self.text, self.file = scenario_text, scenario_file
        self.scenario = parse_scenario(scenario_text, scenario_file)
        self.levers, self.objectives = lever_list, objectives
        self.draws = sample_draws(self.scenario, samples, "lhs", seed)
        self.seed, self.engine, self.replicates = seed, engine, replicates
        self.executor, self.progress = executor, progress
        self.store, self.metadata, self.started = store, metadata, started
        self.run_id: int | None = None
        self.results: dict[tuple[float, ...], np.ndarray] = {}
        """Rounded strengths -> (samples, objectives), in the order they ran."""

    def key(self, strengths: np.ndarray) -> tuple[float, ...]:
        return tuple(round(float(s), STRENGTH_DECIMALS) for s in strengths)

    def run(self, strengths: np.ndarray) -> np.ndarray:
        """(policies, levers) strengths -> (policies, samples, objectives) outcomes."""
        keys = [self.key(row) for row in np.atleast_2d(strengths)]
        new = list(dict.fromkeys(k for k in keys if k not in self.results))
        if new:
            names = [lever.name for lever in self.levers]
            arms = [Arm(f"policy {len(self.results) + i}",
                        make_arm(self.scenario, dict(zip(names, k, strict=True))).policies)
                    for i, k in enumerate(new)]
            experiment = scenario_experiment(self.text, self.file, self.draws, arms, self.engine, self.replicates,
                                             self.seed)
            batch: list[TaskResult] = []
            values = evaluate_targets(experiment, [o.target for o in self.objectives], self.executor,
                                      keep=None if self.store is None else batch.append)
            if self.store is not None:
                self._record(self.store, experiment, batch)
            self.results.update(zip(new, values, strict=True))
            if self.progress is not None:
                self.progress(len(new))
        return np.stack([self.results[k] for k in keys])

    def _record(self, store: Store, experiment: Experiment, batch: list[TaskResult]) -> None:
        """Store a batch of policies: the first creates the run (its ranges written as they are), later
        ones are added as arms in one transaction each (`Store.add_arms`)."""
        layout = layout_of(experiment)
        if self.run_id is not None:
            store.add_arms(self.run_id, [(arm.label, arm.policies) for arm in experiment.arms], batch, layout)
            return
        self.run_id = store.create_run(experiment, layout, SEARCH_KIND, self.executor.describe(), self.metadata)
        for result in batch:
            store.write_range(self.run_id, [arm.label for arm in experiment.arms], result, layout)
        if self.started is not None:
            self.started(self.run_id)

    def best(self) -> np.ndarray:
        """(samples, objectives): the lowest outcome any evaluated policy reached in each sample."""
        return np.stack(list(self.results.values())).min(axis=0)

    def cost(self, strengths: np.ndarray) -> np.ndarray:
        return np.atleast_2d(strengths) @ np.array([lever.cost for lever in self.levers])


def _scores(values: np.ndarray, objectives: list[Objective], metric: Metric, best: np.ndarray) -> np.ndarray:
    """(policies, objectives) numbers to minimise (satisficing shares negated)."""
    columns = []
    for j, objective in enumerate(objectives):
        score = robustness(values[:, :, j], metric, best[:, j], objective.threshold)
        columns.append(-score if metric == "satisficing" else score)
    return np.column_stack(columns)


def optimise(
    scenario_text: str,
    scenario_file: str,
    objectives: Sequence[Objective],
    budget: float,
    metric: Metric = "mean",
    lever_names: Sequence[str] | None = None,
    evaluations: int = 200,
    population: int = 20,
    samples: int = 20,
    engine: str = "deterministic",
    replicates: int = 1,
    seed: int = 0,
    executor: ExecutorSpec = SERIAL,
    progress: Callable[[int], None] | None = None,
    store: Store | None = None,
    started: Callable[[int], None] | None = None,
) -> SearchResult:
    """NSGA-II over lever strengths; `evaluations` policies at most (the baseline is run too).

    With a `store`, every evaluation is recorded as a run of kind 'optimise' (module docstring);
    `started` is told its id once its first policy (the baseline) is stored. `progress` is told the
    policies of each finished batch. Raises DecisionError for a bad objective, lever, metric or budget
    before running anything; on Ctrl-C the stored run keeps the batches that finished (status
    'interrupted').
    """
    scenario = parse_scenario(scenario_text, scenario_file)
    objectives = list(objectives)
    if not objectives:
        raise DecisionError("give at least one objective: --minimise OUTCOME@YYYY-MM")
    if metric not in METRICS:
        raise DecisionError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if metric == "satisficing" and any(o.threshold is None for o in objectives):
        raise DecisionError("the satisficing metric needs a threshold for each objective: OUTCOME@DATE<=VALUE")
    if budget < 0:
        raise DecisionError(f"--budget {budget:g}: expected a budget >= 0")
    if samples < 2 or population < 4 or evaluations < population:
        raise DecisionError("expected at least 2 samples, a population of at least 4 and at least one "
                            "population's worth of evaluations")
    chosen = levers(scenario, lever_names)
    check_targets(scenario, [o.target for o in objectives])
    executor.check()
    metadata = {"search": {"levers": [lever.name for lever in chosen], "objectives": [o.label for o in objectives],
                           "thresholds": [o.threshold for o in objectives], "metric": metric, "budget": budget,
                           "evaluations": evaluations, "population": population},
                NOT_RESUMABLE: "it is a policy search, whose next policies depend on the optimiser's state, which is "
                               "not stored; its stored policies can be explored with 'aftermath discover', or run the "
                               "search again"}
    evaluator = PolicyEvaluator(scenario_text, scenario_file, chosen, objectives, samples, seed, engine,
                                replicates, executor, progress, store, metadata, started)
    with _recorded(evaluator):
        _search(evaluator, chosen, objectives, metric, budget, evaluations, population, seed)
    return _result(scenario, evaluator, chosen, objectives, metric, budget, samples, engine)


@contextmanager
def _recorded(evaluator: PolicyEvaluator) -> Iterator[None]:
    """Mark the stored search run done at the end, 'interrupted' on Ctrl-C, 'failed' on an error."""
    try:
        yield
    except KeyboardInterrupt:
        if evaluator.store is not None and evaluator.run_id is not None:
            evaluator.store.set_status(evaluator.run_id, "interrupted",
                                       f"stopped by Ctrl-C after {len(evaluator.results)} policies")
        raise
    except BaseException as exc:
        if evaluator.store is not None and evaluator.run_id is not None:
            with suppress(StoreError):  # the store may be unwritable too: the run then reads 'stopped'
                evaluator.store.set_status(evaluator.run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    if evaluator.store is not None and evaluator.run_id is not None:
        evaluator.store.set_status(evaluator.run_id, "done")


def _search(evaluator: PolicyEvaluator, chosen: list[Lever], objectives: list[Objective], metric: Metric,
            budget: float, evaluations: int, population: int, seed: int) -> None:
    """Run the baseline, then NSGA-II (pymoo) for `evaluations` policies at most."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.core.repair import Repair
    from pymoo.optimize import minimize

    evaluator.run(np.zeros((1, len(chosen))))

    class Search(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=len(chosen), n_obj=len(objectives), n_ieq_constr=1,
                             xl=np.array([lever.low for lever in chosen]),
                             xu=np.array([lever.high for lever in chosen]))

        def _evaluate(self, x: np.ndarray, out: dict, *args: object, **kwargs: object) -> None:
            rounded = np.round(x, STRENGTH_DECIMALS)
            values = evaluator.run(rounded)
            out["F"] = _scores(values, objectives, metric, evaluator.best())
            out["G"] = (evaluator.cost(rounded) - budget)[:, None]

    class WithinBudget(Repair):
        """Scale an over-budget policy down to the budget (strengths kept within their lower bounds),
        so the search spends its evaluations on affordable policies."""

        def _do(self, problem: Problem, x: np.ndarray, **kwargs: object) -> np.ndarray:
            cost = evaluator.cost(x)
            over = cost > budget
            scale = np.where(over, budget / np.where(cost > 0, cost, 1.0), 1.0)
            lows = np.array([lever.low for lever in chosen])
            return np.maximum(x * scale[:, None], lows[None, :])

    minimize(Search(), NSGA2(pop_size=population, repair=WithinBudget()), ("n_evals", evaluations), seed=seed,
             verbose=False)


def _result(scenario: Scenario, evaluator: PolicyEvaluator, chosen: list[Lever], objectives: list[Objective],
            metric: Metric, budget: float, samples: int, engine: str) -> SearchResult:
    keys = list(evaluator.results)
    strengths = np.array(keys, dtype=float).reshape(len(keys), len(chosen))
    values = np.stack([evaluator.results[k] for k in keys])
    best = evaluator.best()
    scores = _scores(values, objectives, metric, best)
    table = pd.DataFrame(strengths, columns=[lever.name for lever in chosen])
    table["cost"] = evaluator.cost(strengths)
    for j, objective in enumerate(objectives):
        table[f"{objective.label} {metric}"] = -scores[:, j] if metric == "satisficing" else scores[:, j]
        if metric != "mean":
            table[f"{objective.label} mean"] = values[:, :, j].mean(axis=1)
        if metric != "p90":
            table[f"{objective.label} p90"] = np.quantile(values[:, :, j], 0.9, axis=1)
    feasible = table["cost"].to_numpy() <= budget + 1e-9
    efficient = feasible & _non_dominated(scores, feasible)
    pareto = table[efficient].sort_values([f"{objectives[0].label} {metric}"], ascending=metric != "satisficing")
    return SearchResult(scenario.name, chosen, objectives, metric, budget, samples, engine, len(keys),
                        pareto.reset_index(drop=True), table, values, evaluator.run_id)


def _non_dominated(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Mask of candidate rows no other candidate beats in every objective (and strictly in one)."""
    result = np.zeros(len(scores), dtype=bool)
    pool = scores[candidates]
    for i in np.flatnonzero(candidates):
        dominated = np.any(np.all(pool <= scores[i], axis=1) & np.any(pool < scores[i], axis=1))
        result[i] = not dominated
    return result


def compare_command(result: SearchResult, row: pd.Series) -> str:
    """The `aftermath compare` line that re-runs a Pareto policy against the baseline with common random numbers."""
    parts = "+".join(f"{lever.name}={row[lever.name]:g}" for lever in result.levers if row[lever.name] > 0)
    return f"aftermath compare {result.scenario} --policy {parts or 'none'} -s 100 -n 20"

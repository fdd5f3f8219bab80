"""sensitivity, feature-scores, discover, optimise: decisions under deep uncertainty (a thin layer over
aftermath.decisions)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from aftermath.cli.app import app, console, errors, fail
from aftermath.cli.core import ScenarioArg
from aftermath.cli.options import ALL_ARMS, ENGINES, ROBUSTNESS_METRICS, SENSITIVITY_METHODS, SeedOption
from aftermath.cli.progress import Tracker, progress
from aftermath.errors import StoreError
from aftermath.formatting import band, number, span
from aftermath.store import DEFAULT_STORE

if TYPE_CHECKING:
    from aftermath.scenario.schema import Scenario

WorkersOption = Annotated[
    int | None, typer.Option(min=1, help="Worker processes (default: one per core; 1 runs in this process).")
]
EngineOption = Annotated[str, typer.Option(help="deterministic (default) or stochastic (averages --replicates).")]
ReplicatesOption = Annotated[int, typer.Option("--replicates", "-n", min=1,
                                               help="Stochastic runs averaged per point (stochastic engine).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
SaveOption = Annotated[Path | None, typer.Option(help="Also save the result as JSON (for 'aftermath report --with').")]
StoreOption = Annotated[Path, typer.Option("--store", help="The DuckDB run store.")]
RunArg = Annotated[int, typer.Argument(help="A stored run id (see 'aftermath runs').")]


@app.command()
def sensitivity(
    scenario: ScenarioArg = None,
    method: Annotated[str, typer.Option(help=f"One of {', '.join(SENSITIVITY_METHODS)}.")] = "sobol",
    samples: Annotated[int, typer.Option(
        "--samples", "-s", min=1,
        help="sobol: base samples N (a power of two, >= 64; N*(D+2) runs); morris: trajectories (>= 10); "
             "rbd-fast, delta: runs (>= 200).")] = 64,
    outcome: Annotated[list[str] | None, typer.Option(
        help="An outcome to analyse (repeat for more; default: the first outcome).")] = None,
    date: Annotated[list[str] | None, typer.Option(help="A date YYYY-MM (repeat; default: the key dates).")] = None,
    parameter: Annotated[list[str] | None, typer.Option(
        help="Analyse only these uncertain parameters (repeat; default: all).")] = None,
    second_order: Annotated[bool, typer.Option("--second-order", help="Also second-order indices (sobol).")] = False,
    engine: EngineOption = "deterministic",
    replicates: ReplicatesOption = 1,
    seed: SeedOption = 0,
    workers: WorkersOption = None,
    top: Annotated[int, typer.Option(min=1, help="Parameters shown per outcome and date.")] = 5,
    from_run: Annotated[int | None, typer.Option(
        "--from-run", help="Recompute the indices of a stored design run (any outcome, date) without running.")
    ] = None,
    store: StoreOption = DEFAULT_STORE,
    in_memory: Annotated[bool, typer.Option(
        "--in-memory", help="Keep only the chosen outcomes in memory instead of recording the run in --store.")
    ] = False,
    save: SaveOption = None,
    as_json: JsonOption = False,
) -> None:
    """Global sensitivity: which uncertain parameters drive each outcome, with 95% bootstrap intervals.

    Runs the method's own design (Saltelli/Sobol sequence, Morris trajectories, Latin hypercube) through
    SALib, recorded in the run store as a resumable run (see --from-run); indices not significantly above
    zero are marked. Too small a sample is refused with the minimum.
    """
    from aftermath.decisions import scenario_sensitivity, stored_sensitivity
    from aftermath.decisions.payload import sensitivity_payload
    from aftermath.decisions.sensitivity import ranking
    from aftermath.experiments import ExecutorSpec, read_scenario
    from aftermath.experiments.runner import stored_experiment
    from aftermath.store.database import Store

    if engine not in ENGINES:
        fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if from_run is not None:
        if scenario is not None:
            fail("give a SCENARIO to run a design, or --from-run RUN to recompute a stored one, not both")
        with _decision_errors(), _progress("outcome-dates", as_json) as (_, advance, tracker):
            opened = Store(store, lock_timeout=10)
            loaded = stored_experiment(opened.run(from_run)).scenario
            result = stored_sensitivity(opened, from_run, _outcome_targets(loaded, outcome, date), _notice,
                                        tracker.stage, advance)
    else:
        text, file, loaded = read_scenario(scenario)
        targets = _outcome_targets(loaded, outcome, date)
        with _decision_errors(), _progress("runs", as_json) as (started, advance, tracker):
            result = scenario_sensitivity(
                text, file, targets, method=method, samples=samples,  # type: ignore[arg-type]
                second_order=second_order, parameters=parameter, engine=engine, replicates=replicates, seed=seed,
                executor=ExecutorSpec(workers), progress=advance, started=started,
                store=None if in_memory else Store(store), notice=_notice, stage=tracker.stage,
            )
    payload = sensitivity_payload(result)
    if _emit(payload, save, as_json):
        return
    ranked = ranking(result.table)
    index = str(ranked["index"].iloc[0]) if len(ranked) else "-"
    where = "" if result.run_id is None else f", stored run {result.run_id}"
    grid = Table("outcome", "date", f"most influential parameters ({index}, 95% interval)", "not significant",
                 title=f"Sensitivity of {result.scenario}: {result.method}, {result.samples} samples, {result.runs} "
                       f"runs ({result.engine}{where})", title_justify="left")
    for (name, when), rows in ranked.groupby(["outcome", "date"], sort=False):
        significant = rows[rows["significant"]].head(top)
        shown = "\n".join(f"{r.parameter} {band(r.value, r.low, r.high)}" for r in significant.itertuples())
        grid.add_row(str(name), str(when), shown or "none significant", str(int((~rows["significant"]).sum())))
    console.print(grid)
    _saved(save)


@app.command(name="feature-scores")
def feature_scores_command(
    run_id: RunArg,
    outcome: Annotated[list[str], typer.Option(help="An outcome to score (repeat for more).")],
    date: Annotated[list[str] | None, typer.Option(help="A date YYYY-MM (repeat; default: the key dates).")] = None,
    arm: Annotated[str | None, typer.Option(help=f"The arm of a comparison (default: the first; for an optimise run "
                                                 f"{ALL_ARMS}); {ALL_ARMS}: every arm, with the policies' strengths as "
                                                 "more inputs.")] = None,
    store: StoreOption = DEFAULT_STORE,
    top: Annotated[int, typer.Option(min=1, help="Parameters shown per outcome and date.")] = 5,
    seed: SeedOption = 0,
    save: SaveOption = None,
    as_json: JsonOption = False,
) -> None:
    """A quick ranking of the uncertain parameters on a stored ensemble (extra-trees importance, as EMA
    does); parameters that score no higher than a dummy input of random numbers are noise."""
    from aftermath.decisions import feature_scores
    from aftermath.decisions.payload import feature_payload
    from aftermath.decisions.stored import stored_cases
    from aftermath.experiments.runner import stored_experiment
    from aftermath.store.database import Store
    from aftermath.summary import key_dates

    with _decision_errors(), _progress("", as_json) as (_, _, tracker):
        tracker.stage(f"loading run {run_id}'s outcomes", None, "")
        opened = Store(store, lock_timeout=10)
        scenario = stored_experiment(opened.run(run_id)).scenario
        targets = _targets(outcome, date or key_dates(scenario))
        cases = stored_cases(opened, run_id, targets, arm)
        tracker.stage(f"extra-trees on {len(cases.values):,} cases", None, "")
        table = feature_scores(cases.inputs, cases.values, [t.label for t in targets], seed)
    payload = feature_payload(run_id, cases.scenario, table)
    if _emit(payload, save, as_json):
        return
    grid = Table("outcome at date", "parameters (extra-trees importance)", "dummy",
                 title=f"Feature scores of run {run_id} ({len(cases.values)} samples, arm {cases.arm})",
                 title_justify="left")
    for label, rows in table.groupby("output", sort=False):
        real = rows[rows["above_dummy"]].head(top)
        dummy = rows.loc[rows["parameter"] == "(dummy)", "score"]
        grid.add_row(str(label), ", ".join(f"{r.parameter} {number(r.score)}" for r in real.itertuples()) or "none",
                     number(float(dummy.iloc[0])) if len(dummy) else "")
    console.print(grid)
    _saved(save)


@app.command(name="discover")
def discover_command(
    run_id: RunArg,
    outcome: Annotated[str, typer.Option(help="The outcome of interest.")],
    date: Annotated[str, typer.Option(help="Its date, YYYY-MM.")],
    above: Annotated[float | None, typer.Option(help="Cases of interest: the outcome above this value.")] = None,
    below: Annotated[float | None, typer.Option(help="Cases of interest: the outcome below this value.")] = None,
    quantile: Annotated[float | None, typer.Option(
        min=0.01, max=0.99, help="Cases of interest: the outcome above this quantile of the run (e.g. 0.8).")] = None,
    min_density: Annotated[float, typer.Option(
        min=0.05, max=1.0, help="Choose the box of highest coverage with at least this density.")] = 0.8,
    arm: Annotated[str | None, typer.Option(help=f"The arm of a comparison (default: the first; for an optimise run "
                                                 f"{ALL_ARMS}); {ALL_ARMS}: every arm, with the policies' strengths as "
                                                 "more dimensions.")] = None,
    store: StoreOption = DEFAULT_STORE,
    seed: SeedOption = 0,
    save: SaveOption = None,
    as_json: JsonOption = False,
) -> None:
    """Scenario discovery on a stored ensemble: the box of uncertain parameters (and, with --arm all or
    on an optimise run, policy strengths) where the outcome of interest happens (PRIM with peeling and
    pasting; CART as a second opinion)."""
    import numpy as np

    from aftermath.decisions import classify, discover, parse_target
    from aftermath.decisions.payload import discovery_payload
    from aftermath.decisions.stored import stored_cases
    from aftermath.store.database import Store

    if sum(x is not None for x in (above, below, quantile)) != 1:
        fail("give exactly one of --above, --below or --quantile")
    with _decision_errors(), _progress("", as_json) as (_, _, tracker):
        target = parse_target(f"{outcome}@{date}")
        tracker.stage(f"loading run {run_id}'s outcomes", None, "")
        cases = stored_cases(Store(store, lock_timeout=10), run_id, [target], arm)
        values = cases.values[:, 0]
        if quantile is not None:
            above = float(np.quantile(values, quantile))
        condition = f"> {number(above, digits=6)}" if above is not None else f"< {number(below, digits=6)}"
        tracker.stage(f"PRIM and CART on {len(values):,} cases", None, "")
        found = discover(cases.inputs, classify(values, above, below), min_density, seed)
    payload = discovery_payload(run_id, cases.scenario, target.outcome, target.date, condition, found)
    if _emit(payload, save, as_json):
        return
    chosen = found.chosen
    what = "cases (arm x sample)" if cases.arm == ALL_ARMS else "samples"
    console.print(f"{found.of_interest} of {found.cases} {what} of run {run_id} have {target.outcome} {condition} "
                  f"in {target.date}.", markup=False, highlight=False)
    trade = Table("box", "coverage", "density", "mass", "restricted", title="PRIM peeling and pasting trajectory "
                  "(coverage-density trade-off)", title_justify="left")
    for row in found.trajectory.itertuples():
        mark = " <- chosen" if row.index == chosen.index else ""
        trade.add_row(f"{row.index}{mark}", number(row.coverage), number(row.density), number(row.mass),
                      str(row.restricted))
    console.print(trade)
    limits = Table("parameter", "from", "to", "quasi-p low", "quasi-p high", "ensemble range",
                   title=f"Box {chosen.index} without its chance restrictions: coverage {number(chosen.coverage)}, "
                         f"density {number(chosen.density)}, mass {number(chosen.mass)}", title_justify="left")
    for row in chosen.limits.itertuples():
        limits.add_row(row.parameter, _maybe(row.low), _maybe(row.high), _maybe(row.qp_low), _maybe(row.qp_high),
                       span(row.full_low, row.full_high))
    console.print(limits)
    if chosen.freed:
        console.print(f"freed {len(chosen.freed)} dimensions peeled on chance (quasi-p > 0.05): "
                      f"{', '.join(chosen.freed)}", markup=False, highlight=False)
    cart = Table("coverage", "density", "mass", "rule", title="CART leaves of mostly cases of interest",
                 title_justify="left")
    for row in found.cart.head(5).itertuples():
        cart.add_row(number(row.coverage), number(row.density), number(row.mass), row.rule)
    console.print(cart)
    _saved(save)


@app.command(name="optimise")
def optimise_command(
    scenario: ScenarioArg = None,
    minimise: Annotated[list[str] | None, typer.Option(
        help="An objective OUTCOME@YYYY-MM (with the satisficing metric OUTCOME@YYYY-MM<=VALUE). Repeat for more.")
    ] = None,
    budget: Annotated[float, typer.Option(help="The most the policy may cost, in the levers' cost unit.")] = 1.0,
    metric: Annotated[
        str, typer.Option(help=f"Robustness over the samples: {', '.join(ROBUSTNESS_METRICS)}.")
    ] = "mean",
    lever: Annotated[list[str] | None, typer.Option(help="A costed intervention to search (default: all).")] = None,
    evaluations: Annotated[int, typer.Option(min=4, help="Policies to run at most.")] = 200,
    population: Annotated[int, typer.Option(min=4, help="NSGA-II population.")] = 20,
    samples: Annotated[int, typer.Option("--samples", "-s", min=2, help="Parameter samples each policy runs on.")
                       ] = 20,
    engine: EngineOption = "deterministic",
    replicates: ReplicatesOption = 1,
    seed: SeedOption = 0,
    workers: WorkersOption = None,
    store: StoreOption = DEFAULT_STORE,
    in_memory: Annotated[bool, typer.Option(
        "--in-memory", help="Keep only the objectives in memory instead of recording the evaluations in --store.")
    ] = False,
    save: SaveOption = None,
    as_json: JsonOption = False,
) -> None:
    """Robust policy search: lever strengths within a budget that do well over the parameter ensemble
    (NSGA-II, pymoo). Prints the Pareto set and the 'compare' line that re-runs each policy.

    Every evaluated policy is recorded in the run store as an arm of one run (kind 'optimise'), so
    'aftermath discover RUN' finds the lever strengths and conditions where an outcome happens."""
    from aftermath.decisions import optimise, parse_objective
    from aftermath.decisions.payload import search_payload
    from aftermath.experiments import ExecutorSpec, read_scenario
    from aftermath.store.database import Store

    if engine not in ENGINES:
        fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if not minimise:
        fail("give at least one --minimise OUTCOME@YYYY-MM")
    text, file, _ = read_scenario(scenario)
    with _decision_errors():
        objectives = [parse_objective(item) for item in minimise]
    known: list[int] = []
    with _search_interrupted(known), _decision_errors(), _progress("policies", as_json) as (started, advance, _):
        started(evaluations + 1)
        result = optimise(
            text, file, objectives, budget, metric=metric, lever_names=lever,  # type: ignore[arg-type]
            evaluations=evaluations, population=population, samples=samples, engine=engine,
            replicates=replicates, seed=seed, executor=ExecutorSpec(workers), progress=advance,
            store=None if in_memory else Store(store), started=known.append,
        )
    payload = search_payload(result)
    if _emit(payload, save, as_json):
        return
    columns = [c for c in result.pareto.columns]
    grid = Table("policy", *columns, title=f"Pareto set of {result.scenario}: {result.evaluations} policies on "
                 f"{result.samples} samples, {result.metric}, budget {result.budget:g} "
                 f"{result.levers[0].unit}", title_justify="left")
    for index, (_, row) in enumerate(result.pareto.iterrows(), 1):
        grid.add_row(str(index), *[number(float(row[c])) for c in columns])
    console.print(grid)
    for index, command in enumerate(payload["compare"], 1):
        console.print(f"policy {index}, paired bands against the baseline: {command}", markup=False, highlight=False)
    if result.run_id is not None:
        console.print(f"stored as run {result.run_id} in {store}: {result.evaluations} policies x {result.samples} "
                      f"samples; 'aftermath discover {result.run_id} --store {store} --outcome OUTCOME --date "
                      "YYYY-MM --below VALUE' finds the lever strengths and conditions where it happens",
                      markup=False, highlight=False)
    _saved(save)


@contextmanager
def _search_interrupted(known: list[int]) -> Iterator[None]:
    """Ctrl-C during a search: say what the store kept (whole generations of policies), exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        if known:
            errors.print(f"interrupted: run {known[0]} keeps the policies evaluated so far ('aftermath discover "
                         f"{known[0]}' explores them; a search cannot be resumed)", markup=False, highlight=False)
        else:
            errors.print("interrupted before the first policy was stored", markup=False, highlight=False)
        raise SystemExit(130) from None


def _targets(outcomes: list[str], dates: list[str]):
    from aftermath.decisions import parse_target

    return [parse_target(f"{name}@{when}") for name in outcomes for when in dates]


def _outcome_targets(scenario: Scenario, outcomes: list[str] | None, dates: list[str] | None):
    """The asked outcomes (default: the first one-number outcome) at the asked dates (default: key dates)."""
    from aftermath.summary import key_dates

    names = outcomes or [next(name for name, o in scenario.outcomes.items() if not o.by)]
    with _decision_errors():
        return _targets(names, dates or key_dates(scenario))


def _notice(text: str) -> None:
    errors.print(text, markup=False, highlight=False)


def _maybe(value: float | None) -> str:
    """A box limit: empty where the box does not restrict that side."""
    import numpy as np

    return "" if value is None or np.isnan(value) else number(value)


def _emit(payload: dict, save: Path | None, as_json: bool) -> bool:
    """Save the payload if asked; print it as JSON (and say so by returning True) with --json."""
    from aftermath.decisions.payload import save_payload

    if save is not None:
        try:
            save_payload(payload, save)
        except OSError as exc:
            fail(f"--save {save}: {exc}")
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
    return as_json


def _saved(save: Path | None) -> None:
    if save is not None:
        console.print(f"saved to {save}; add it to a report with 'aftermath report --with {save}'",
                      markup=False, highlight=False)


@contextmanager
def _decision_errors() -> Iterator[None]:
    """Refusals and store/executor problems: one line and exit 2."""
    from aftermath.decisions import DecisionError
    from aftermath.experiments import ExecutorError

    try:
        yield
    except (DecisionError, StoreError, ExecutorError) as exc:
        fail(str(exc))


@contextmanager
def _progress(unit: str, quiet: bool) -> Iterator[tuple[Callable[[int], None], Callable[[int], None], Tracker]]:
    """(started(total), advance(done), the tracker for later stages) for the decision functions, through
    `cli.progress`."""
    with progress("running", unit=unit, quiet=quiet) as tracker:
        yield (lambda total: tracker.update(total=total)), tracker.advance, tracker

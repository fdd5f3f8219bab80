"""ensemble, compare, runs, show, resume: experiments run into the DuckDB run store."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from aftermath.cli.app import app, console, errors, fail
from aftermath.cli.core import ScenarioArg, _print_bands, band_text
from aftermath.cli.options import PosteriorOption, SeedOption, parse_policies, parse_policy, posterior_draws
from aftermath.decisions.evaluate import DecisionError
from aftermath.decisions.sensitivity import MINIMUM, check_sample_size, given_data_sensitivity
from aftermath.engines.simulate import ENGINES
from aftermath.experiments import (
    EnsembleResult,
    ExecutorError,
    ExecutorSpec,
    comparison_table,
    design_experiment,
    load_result,
    read_scenario,
    resume,
    run_stored,
    variance_split,
)
from aftermath.experiments.sampling import SAMPLERS
from aftermath.store import DEFAULT_STORE, Store, StoreError
from aftermath.summary import bands

StoreOption = Annotated[Path, typer.Option("--store", help="The DuckDB run store.")]
SamplesOption = Annotated[int, typer.Option("--samples", "-s", min=1, help="Parameter samples.")]
ReplicatesOption = Annotated[int, typer.Option("--replicates", "-n", min=1, help="Stochastic replicates per sample.")]
SamplerOption = Annotated[str, typer.Option(help="lhs (Latin hypercube) or mc (plain Monte Carlo).")]
WorkersOption = Annotated[
    int | None, typer.Option(min=1, help="Worker processes (default: one per core; 1 runs in this process).")
]
DaskOption = Annotated[str | None, typer.Option(help="Run on Dask: 'local' (a LocalCluster) or tcp://HOST:PORT.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]
SplitOption = Annotated[bool, typer.Option("--split", help="Also split the spread: parametric vs stochastic.")]
SensitivityOption = Annotated[bool, typer.Option(
    "--sensitivity",
    help=f"Also rank the uncertain parameters by first-order sensitivity (RBD-FAST, with 95% intervals; "
    f">= {MINIMUM['rbd-fast']} samples). 'aftermath sensitivity' runs a proper design.",
)]
RunArg = Annotated[int, typer.Argument(help="A run id (see 'aftermath runs').")]


@app.command()
def ensemble(
    scenario: ScenarioArg = None,
    samples: SamplesOption = 50,
    replicates: ReplicatesOption = 20,
    sampler: SamplerOption = "lhs",
    seed: SeedOption = 1,
    engine: Annotated[str, typer.Option(help="stochastic or deterministic (one member per sample).")] = "stochastic",
    policy: Annotated[list[str] | None, typer.Option(help="Apply policies: NAME, NAME=STRENGTH, or A+B.")] = None,
    workers: WorkersOption = None,
    dask: DaskOption = None,
    store: StoreOption = DEFAULT_STORE,
    split: SplitOption = False,
    sensitivity: SensitivityOption = False,
    posterior: PosteriorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run an ensemble under parameter uncertainty and store it: samples x stochastic replicates."""
    if engine not in ENGINES:
        fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if sensitivity:
        try:
            check_sample_size("rbd-fast", samples, 1)
        except DecisionError as exc:
            fail(f"--sensitivity: {exc}; or use 'aftermath sensitivity' (Sobol, Morris) for a design of its own")
    _run_new(scenario, "ensemble", [parse_policies(policy)], samples, replicates, sampler, seed, engine,
             ExecutorSpec(workers, dask), store, Extras(split, sensitivity), as_json, posterior)


@app.command()
def compare(
    scenario: ScenarioArg = None,
    policy: Annotated[list[str] | None, typer.Option(help="A policy to compare: NAME, NAME=STRENGTH, or A+B.")] = None,
    samples: SamplesOption = 50,
    replicates: ReplicatesOption = 20,
    sampler: SamplerOption = "lhs",
    seed: SeedOption = 1,
    workers: WorkersOption = None,
    dask: DaskOption = None,
    store: StoreOption = DEFAULT_STORE,
    posterior: PosteriorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare policies with the baseline: same seed and samples, paired differences member by member."""
    if not policy:
        raise typer.BadParameter("give at least one --policy to compare with the baseline", param_hint="--policy")
    arms = [{}, *[parse_policy(text) for text in policy]]
    _run_new(scenario, "compare", arms, samples, replicates, sampler, seed, "stochastic",
             ExecutorSpec(workers, dask), store, Extras(), as_json, posterior)


@app.command()
def runs(store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """List the runs in the store, newest first."""
    with _clear_errors():
        table = Store(store, lock_timeout=10).runs()
    if as_json:
        typer.echo(table.to_json(orient="records", date_format="iso", indent=2))
        return
    grid = Table("run", "kind", "scenario", "hash", "seed", "samples x reps", "stored", "arms", "status", "started",
                 "finished", title=f"Runs in {store}", title_justify="left")
    for row in table.itertuples():
        grid.add_row(
            str(row.run_id), row.kind, row.scenario, row.scenario_hash, str(row.seed),
            f"{row.samples} x {row.replicates}", f"{row.stored}/{row.members}", row.policies, row.status,
            _when(row.started), _when(row.finished),
        )
    console.print(grid)


@app.command()
def show(run_id: RunArg, store: StoreOption = DEFAULT_STORE, split: SplitOption = False,
         sensitivity: SensitivityOption = False, as_json: JsonOption = False) -> None:
    """Show a stored run's summary: bands at key dates, or the comparison table."""
    _report(Store(store, lock_timeout=10), run_id, Extras(split, sensitivity), as_json)


@app.command(name="resume")
def resume_run(
    run_id: RunArg,
    workers: WorkersOption = None,
    dask: DaskOption = None,
    store: StoreOption = DEFAULT_STORE,
    split: SplitOption = False,
    sensitivity: SensitivityOption = False,
    as_json: JsonOption = False,
) -> None:
    """Finish a run that was interrupted or killed: run its missing ranges, then show it."""
    opened = Store(store)
    with _interruptible(lambda: run_id), _clear_errors(), _progress(as_json) as (started, advance):
        resume(opened, run_id, ExecutorSpec(workers, dask), progress=advance, started=started)
    _report(opened, run_id, Extras(split, sensitivity), as_json)


def _run_new(
    scenario: str | None, kind: str, arms: list, samples: int, replicates: int, sampler: str, seed: int,
    engine: str, executor: ExecutorSpec, store: Path, extras: Extras, as_json: bool, posterior: int | None = None,
) -> None:
    if sampler not in SAMPLERS:
        fail(f"--sampler {sampler!r}: expected one of {', '.join(SAMPLERS)}")
    with _clear_errors():
        executor.check()  # before the scenario is even read
    text, file, loaded = read_scenario(scenario)
    draws = posterior_draws(loaded, posterior, store, samples, seed)
    experiment = design_experiment(
        text, file, samples=samples, replicates=replicates, arms=arms,
        sampler=sampler if posterior is None else f"posterior {posterior}",  # type: ignore[arg-type]
        seed=seed, engine=engine, draws=draws,  # type: ignore[arg-type]
    )
    opened = Store(store)
    known: list[int] = []
    with _interruptible(lambda: known[0] if known else None), _clear_errors(), _progress(as_json) as (bar, advance):

        def started(run_id: int, total: int) -> None:
            known.append(run_id)
            bar(run_id, total)

        run_id = run_stored(opened, experiment, kind, executor, progress=advance, started=started)
    _report(opened, run_id, extras, as_json)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Store and executor problems become one line and exit 2."""
    try:
        yield
    except (StoreError, ExecutorError) as exc:
        fail(str(exc))


@contextmanager
def _interruptible(run_id: Callable[[], int | None]) -> Iterator[None]:
    """Ctrl-C: say what was kept and how to finish, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        known = run_id()
        if known is None:
            errors.print("interrupted before the run was stored")
        else:
            errors.print(f"interrupted: run {known} keeps its finished ranges; 'aftermath resume {known}' finishes it")
        raise SystemExit(130) from None


@contextmanager
def _progress(quiet: bool) -> Iterator[tuple]:
    """Progress over members, as (started, advance) callbacks: a bar with counts and ETA on a
    terminal, otherwise a line on stderr per stored range (the log of a batch job)."""
    if quiet or not console.is_terminal:
        with _progress_lines(quiet) as callbacks:
            yield callbacks
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("members"), TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def started(run_id: int, total: int) -> None:
            bar.update(task, description=f"run {run_id}", total=total)

        yield started, lambda done: bar.advance(task, done)


@contextmanager
def _progress_lines(quiet: bool) -> Iterator[tuple]:
    state = {"run": 0, "total": 0, "done": 0, "start": time.monotonic()}

    def say() -> None:
        if quiet:
            return
        elapsed = time.monotonic() - state["start"]
        rate = state["done"] / elapsed if elapsed > 0 else 0.0
        left = f", about {(state['total'] - state['done']) / rate:.0f} s left" if rate > 0 else ""
        errors.print(f"run {state['run']}: {state['done']}/{state['total']} members stored, {elapsed:.0f} s{left}",
                     highlight=False)

    def started(run_id: int, total: int) -> None:
        state.update(run=run_id, total=total, start=time.monotonic())
        say()

    def advance(done: int) -> None:
        state["done"] += done
        say()

    yield started, advance


def _when(value: object) -> str:
    return "" if pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Extras:
    """Optional parts of a run's report."""

    split: bool = False
    sensitivity: bool = False


def _report(store: Store, run_id: int, extras: Extras, as_json: bool) -> None:
    """The run's summary from the store (so a resumed run reads exactly like an uninterrupted one)."""
    with _clear_errors():
        stored = load_result(store, run_id, key_dates_only=True)
    result, row, dates = stored.result, stored.run.row, stored.dates or []
    table = comparison_table(result, dates)
    split_table = variance_split(result.arms[result.reference], result.replicates, dates) if extras.split else None
    ranking = None
    if extras.sensitivity:
        try:
            ranking = _sensitivity(result, stored.run.draws, dates[-1])
        except DecisionError as exc:
            fail(f"--sensitivity: {exc}")
    stored_members = result.arms[result.reference].sizes["replicate"]
    if as_json:
        payload = {
            "run_id": run_id, "store": str(store.path), "kind": row["kind"], "scenario": row["scenario"],
            "scenario_hash": row["scenario_hash"], "seed": int(row["seed"]), "engine": row["engine"],
            "sampler": row["sampler"], "samples": int(row["samples"]), "replicates": int(row["replicates"]),
            "members": int(row["members"]), "stored": stored_members, "status": row["status"],
            "arms": dict(stored.run.arms), "bands": json.loads(table.to_json(orient="records")),
        }
        if split_table is not None:
            payload["variance_split"] = json.loads(split_table.to_json(orient="records"))
        if ranking is not None:
            payload["sensitivity"] = json.loads(ranking.to_json(orient="records"))
        typer.echo(json.dumps(payload, indent=2))
        return
    if stored_members < int(row["members"]):
        errors.print(f"run {run_id} is {row['status']}: {stored_members} of {row['members']} members stored; "
                     f"'aftermath resume {run_id}' finishes it")
    subtitle = (f"run {run_id} in {store.path}: {row['samples']} samples x {row['replicates']} replicates "
                f"({row['sampler']}), {row['engine']}, seed {row['seed']}")
    title = stored.experiment.scenario.title
    if len(result.arms) == 1:
        _print_bands(title, bands(result.arms[result.reference], dates), subtitle, stored.run.arms[0][1])
    else:
        _print_comparison(f"{title}\n{subtitle}", table, list(result.arms))
    if split_table is not None:
        _print_split(split_table)
    if ranking is not None:
        _print_sensitivity(ranking)


def _scalar_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of outcomes that are one number per date (no strata)."""
    fixed = {"outcome", "arm", "measure", "date", "median", "low", "high", "parametric_sd", "stochastic_sd",
             "parametric_share"}
    strata = [c for c in table.columns if c not in fixed]
    return table[table[strata].isna().all(axis=1)] if strata else table


def _print_comparison(title: str, table: pd.DataFrame, labels: list[str]) -> None:
    reference, policies = labels[0], labels[1:]
    grid = Table(title=f"{title}\nmedian (5-95%); difference = policy - {reference}, member by member",
                 title_justify="left")
    grid.add_column("outcome", no_wrap=True)
    grid.add_column("date", no_wrap=True)
    grid.add_column(reference, justify="right")
    for label in policies:
        grid.add_column(label, justify="right")
        grid.add_column(f"difference {label}", justify="right")
    plain = _scalar_rows(table)
    cells = {(r.outcome, r.date, r.arm, r.measure): band_text(r.median, r.low, r.high, "\n")
             for r in plain.itertuples()}
    for outcome in dict.fromkeys(plain["outcome"]):
        for date in dict.fromkeys(plain["date"]):
            row = [cells.get((outcome, date, reference, "level"), "")]
            for label in policies:
                row += [cells.get((outcome, date, label, measure), "") for measure in ("level", "difference")]
            grid.add_row(str(outcome), date, *row)
    console.print(grid)
    stratified = sorted(set(table["outcome"]) - set(plain["outcome"]))
    if stratified:
        console.print(f"stratified outcomes (see --json or the store): {', '.join(stratified)}")


def _print_split(table: pd.DataFrame) -> None:
    grid = Table("outcome", "date", "parametric sd", "stochastic sd", "parametric share",
                 title="Where the spread comes from (parameter uncertainty vs chance)", title_justify="left")
    for row in _scalar_rows(table).itertuples():
        grid.add_row(str(row.outcome), row.date, f"{row.parametric_sd:.3g}", f"{row.stochastic_sd:.3g}",
                     "" if pd.isna(row.parametric_share) else f"{row.parametric_share:.0%}")
    console.print(grid)


def _sensitivity(result: EnsembleResult, draws: dict, date: str) -> pd.DataFrame:
    """RBD-FAST indices of each one-number outcome at `date` (per-sample means), with intervals."""
    reference = result.arms[result.reference]
    means = reference.sel(time=np.datetime64(date, "M")).groupby("sample").mean()
    names = [name for name in means.data_vars if means[name].ndim == 1]
    samples = means["sample"].values
    values = np.column_stack([means[name].values for name in names])
    inputs = {name: np.asarray(draw)[samples] for name, draw in draws.items()}
    table = given_data_sensitivity(inputs, values, names, "rbd-fast")
    table.insert(1, "date", date)
    return table.rename(columns={"output": "outcome"})


def _print_sensitivity(ranking: pd.DataFrame) -> None:
    grid = Table("outcome", "date", "parameters whose first-order index is significant (RBD-FAST, 95% interval)",
                 title="Sensitivity (parameters not listed are not distinguishable from noise)", title_justify="left")
    for (outcome, date), rows in ranking.groupby(["outcome", "date"], sort=False):
        top = rows[rows["significant"]].nlargest(3, "value")
        grid.add_row(str(outcome), str(date),
                     ", ".join(f"{r.parameter} {r.value:.2f} ({r.low:.2f}-{r.high:.2f})" for r in top.itertuples())
                     or "none")
    console.print(grid)

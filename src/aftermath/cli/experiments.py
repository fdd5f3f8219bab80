"""ensemble, compare, runs, show, resume: experiments run into the DuckDB run store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from aftermath.cli.app import app, console, errors, fail
from aftermath.cli.core import ScenarioArg
from aftermath.cli.display import (
    cell,
    outcome_metadata,
    print_bands,
    scalar_rows,
    shown_outcomes,
    strata_metadata,
)
from aftermath.cli.options import (
    ENGINES,
    RBD_FAST_MINIMUM,
    SAMPLERS,
    PosteriorOption,
    PriorOption,
    SeedOption,
    parameters_for,
    parse_policies,
    parse_policy,
)
from aftermath.cli.progress import progress
from aftermath.errors import StoreError
from aftermath.formatting import band, number
from aftermath.store import DEFAULT_STORE

if TYPE_CHECKING:
    import pandas as pd

    from aftermath.experiments import EnsembleResult, ExecutorSpec
    from aftermath.scenario.schema import Scenario
    from aftermath.store.database import Store

StoreOption = Annotated[Path, typer.Option("--store", help="The DuckDB run store.")]
SamplesOption = Annotated[int, typer.Option("--samples", "-s", min=1, help="Parameter samples.")]
ReplicatesOption = Annotated[int, typer.Option("--replicates", "-n", min=1, help="Stochastic replicates per sample.")]
SamplerOption = Annotated[str | None, typer.Option(
    help="How to sample the priors (with --prior, or a scenario with no shipped posterior): lhs (Latin hypercube, "
    "the default) or mc (plain Monte Carlo).")]
WorkersOption = Annotated[
    int | None, typer.Option(min=1, help="Worker processes (default: one per core; 1 runs in this process).")
]
DaskOption = Annotated[str | None, typer.Option(help="Run on Dask: 'local' (a LocalCluster) or tcp://HOST:PORT.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]
SplitOption = Annotated[bool, typer.Option("--split", help="Also split the spread: parametric vs stochastic.")]
SensitivityOption = Annotated[bool, typer.Option(
    "--sensitivity",
    help=f"Also rank the uncertain parameters by first-order sensitivity (RBD-FAST, with 95% intervals; "
    f">= {RBD_FAST_MINIMUM} samples). 'aftermath sensitivity' runs a proper design.",
)]
AllOption = Annotated[bool, typer.Option("--all", help="Show every outcome and stratum, not only the headline set.")]
RunArg = Annotated[int, typer.Argument(help="A run id (see 'aftermath runs').")]
OutcomesOption = Annotated[str | None, typer.Option(
    "--outcomes", help="Store only these outcomes (and sub-model outputs), comma separated (default: all).",
)]


@app.command()
def ensemble(
    scenario: ScenarioArg = None,
    samples: SamplesOption = 50,
    replicates: ReplicatesOption = 20,
    sampler: SamplerOption = None,
    seed: SeedOption = 1,
    engine: Annotated[str, typer.Option(help="stochastic or deterministic (one member per sample).")] = "stochastic",
    policy: Annotated[list[str] | None, typer.Option(help="Apply policies: NAME, NAME=STRENGTH, or A+B.")] = None,
    workers: WorkersOption = None,
    dask: DaskOption = None,
    store: StoreOption = DEFAULT_STORE,
    split: SplitOption = False,
    sensitivity: SensitivityOption = False,
    posterior: PosteriorOption = None,
    outcomes: OutcomesOption = None,
    prior: PriorOption = False,
    everything: AllOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run an ensemble under parameter uncertainty and store it: samples x stochastic replicates."""
    from aftermath.decisions.evaluate import DecisionError
    from aftermath.decisions.sensitivity import check_sample_size
    from aftermath.experiments import ExecutorSpec

    if engine not in ENGINES:
        fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if sensitivity:
        try:
            check_sample_size("rbd-fast", samples, 1)
        except DecisionError as exc:
            fail(f"--sensitivity: {exc}; or use 'aftermath sensitivity' (Sobol, Morris) for a design of its own")
    _run_new(scenario, "ensemble", [parse_policies(policy)], samples, replicates, sampler, seed, engine,
             ExecutorSpec(workers, dask), store, Extras(split, sensitivity, everything), as_json, posterior, outcomes,
             prior)


@app.command()
def compare(
    scenario: ScenarioArg = None,
    policy: Annotated[list[str] | None, typer.Option(help="A policy to compare: NAME, NAME=STRENGTH, or A+B.")] = None,
    samples: SamplesOption = 50,
    replicates: ReplicatesOption = 20,
    sampler: SamplerOption = None,
    seed: SeedOption = 1,
    workers: WorkersOption = None,
    dask: DaskOption = None,
    store: StoreOption = DEFAULT_STORE,
    posterior: PosteriorOption = None,
    outcomes: OutcomesOption = None,
    prior: PriorOption = False,
    everything: AllOption = False,
    as_json: JsonOption = False,
) -> None:
    """Compare policies with the baseline: same seed and samples, paired differences member by member."""
    from aftermath.experiments import ExecutorSpec

    if not policy:
        raise typer.BadParameter("give at least one --policy to compare with the baseline", param_hint="--policy")
    arms = [{}, *[parse_policy(text) for text in policy]]
    _run_new(scenario, "compare", arms, samples, replicates, sampler, seed, "stochastic",
             ExecutorSpec(workers, dask), store, Extras(everything=everything), as_json, posterior, outcomes, prior)


@app.command()
def runs(store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """List the runs in the store, newest first."""
    from aftermath.store.database import Store

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
            f"{row.samples} x {row.replicates}", f"{row.stored}/{row.members}", _arms(row.policies), row.status,
            _when(row.started), _when(row.finished),
        )
    console.print(grid)


@app.command()
def show(run_id: RunArg, store: StoreOption = DEFAULT_STORE, split: SplitOption = False,
         sensitivity: SensitivityOption = False, everything: AllOption = False, as_json: JsonOption = False) -> None:
    """Show a stored run's summary: bands at key dates, or the comparison table; a calibration's posterior."""
    from aftermath.store.database import Store

    opened = Store(store, lock_timeout=10)
    with _clear_errors():
        row = opened.run(run_id).row
    if row["kind"] == "calibration":
        _show_calibration(opened, run_id, row, as_json)
        return
    _report(opened, run_id, Extras(split, sensitivity, everything), as_json)


def _show_calibration(store: Store, run_id: int, row: dict, as_json: bool) -> None:
    """A stored calibration's posterior, as `aftermath calibrate` printed it."""
    from aftermath.cli.calibrate import show_posterior
    from aftermath.inference.calibration import load_posterior
    from aftermath.scenario.loader import parse_scenario

    with _clear_errors():
        posterior = load_posterior(store, run_id)
    show_posterior(parse_scenario(row["scenario_text"], row["scenario_file"]), posterior, store.path, as_json)


@app.command(name="resume")
def resume_run(
    run_id: RunArg,
    workers: WorkersOption = None,
    dask: DaskOption = None,
    store: StoreOption = DEFAULT_STORE,
    split: SplitOption = False,
    sensitivity: SensitivityOption = False,
    everything: AllOption = False,
    as_json: JsonOption = False,
) -> None:
    """Finish a run that was interrupted or killed: run its missing ranges, then show it.

    A run that is already complete is not shown again: this says so (with --json, prints its summary)."""
    from aftermath.experiments import ExecutorSpec, resume
    from aftermath.store.database import Store

    opened = Store(store)
    with _interruptible(lambda: run_id), _clear_errors(), _progress(as_json) as (started, advance):
        ran = resume(opened, run_id, ExecutorSpec(workers, dask), progress=advance, started=started)
    if not ran and not as_json:
        console.print(f"run {run_id} is already complete; nothing to resume ('aftermath show {run_id}' shows it)",
                      highlight=False)
        return
    _report(opened, run_id, Extras(split, sensitivity, everything), as_json)


def _run_new(
    scenario: str | None, kind: str, arms: list, samples: int, replicates: int, sampler: str, seed: int,
    engine: str, executor: ExecutorSpec, store: Path, extras: Extras, as_json: bool, posterior: int | None = None,
    outcomes: str | None = None, prior: bool = False,
) -> None:
    from aftermath.experiments import design_experiment, read_scenario, run_stored
    from aftermath.experiments.design import OutcomeChoiceError
    from aftermath.store.database import Store

    if sampler is not None and sampler not in SAMPLERS:
        fail(f"--sampler {sampler!r}: expected one of {', '.join(SAMPLERS)}")
    with _clear_errors():
        executor.check()  # before the scenario is even read
    text, file, loaded = read_scenario(scenario)
    source = parameters_for(loaded, posterior, store, prior)
    if source.posterior is not None and sampler is not None:
        fail(f"--sampler {sampler}: it samples the priors, but the parameters are drawn from the {source.label}; "
             "add --prior to sample the priors")
    try:
        experiment = design_experiment(
            text, file, samples=samples, replicates=replicates, arms=arms,
            sampler=sampler or "lhs" if source.posterior is None else source.label,  # type: ignore[arg-type]
            seed=seed, engine=engine, draws=source.draws(samples, seed),
            outcomes=None if outcomes is None else [name.strip() for name in outcomes.split(",") if name.strip()],
        )
    except OutcomeChoiceError as exc:
        fail(f"--outcomes: {exc}")
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
    from aftermath.experiments import ExecutorError

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
    """Progress over members, as (started, advance) callbacks for the experiment runner (see cli.progress)."""
    with progress("starting", unit="members stored", quiet=quiet, period=0) as tracker:

        def started(run_id: int, total: int) -> None:
            tracker.update(description=f"run {run_id}", total=total)

        yield started, tracker.advance


SHOWN_ARMS = 4
"""Arms `runs` names in full; a run with more (a policy search) shows its count, first and last."""


def _arms(policies: str) -> str:
    labels = policies.split(", ")
    if len(labels) <= SHOWN_ARMS:
        return policies
    return f"{len(labels)} arms: {labels[0]} ... {labels[-1]}"


def _when(value: object) -> str:
    import pandas as pd

    return "" if pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Extras:
    """Optional parts of a run's report."""

    split: bool = False
    sensitivity: bool = False
    everything: bool = False


def _report(store: Store, run_id: int, extras: Extras, as_json: bool) -> None:
    """The run's summary from the store (so a resumed run reads exactly like an uninterrupted one)."""
    from aftermath.decisions.evaluate import DecisionError
    from aftermath.experiments import comparison_table, load_result, variance_split
    from aftermath.scenario.describe import headline_outcomes
    from aftermath.summary import bands

    with _clear_errors():
        stored = load_result(store, run_id, key_dates_only=True)
    result, row, dates = stored.result, stored.run.row, stored.dates or []
    scenario = stored.experiment.scenario
    table = comparison_table(result, dates)
    split_table = variance_split(result.arms[result.reference], result.replicates, dates) if extras.split else None
    ranking = None
    if extras.sensitivity:
        try:
            with progress("sensitivity (RBD-FAST)", quiet=as_json):
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
            "arms": dict(stored.run.arms), "headline": headline_outcomes(scenario),
            "outcomes": outcome_metadata(scenario, list(dict.fromkeys(table["outcome"]))),
            "strata": strata_metadata(scenario), "bands": json.loads(table.to_json(orient="records")),
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
    if len(result.arms) == 1:
        print_bands(scenario, bands(result.arms[result.reference], dates), subtitle, stored.run.arms[0][1],
                    extras.everything)
    else:
        _print_comparison(scenario, subtitle, table, list(result.arms), extras.everything)
    if split_table is not None:
        _print_split(split_table)
    if ranking is not None:
        _print_sensitivity(ranking)


COMPARISON_COLUMNS = ("arm", "measure", "parametric_sd", "stochastic_sd", "parametric_share")


def _print_comparison(scenario: Scenario, subtitle: str, table: pd.DataFrame, labels: list[str],
                      everything: bool) -> None:
    from aftermath.scenario.describe import outcome_kind, outcome_label

    reference, policies = labels[0], labels[1:]
    grid = Table(title=f"{scenario.title}\n{subtitle}\nmedian (5-95%); difference = policy - {reference}, "
                 "member by member", title_justify="left")
    grid.add_column("outcome", no_wrap=True)
    grid.add_column("date", no_wrap=True)
    grid.add_column(reference, justify="right")
    for label in policies:
        grid.add_column(label, justify="right")
        grid.add_column(f"difference {label}", justify="right")
    plain = scalar_rows(table, COMPARISON_COLUMNS)
    names = shown_outcomes(scenario, plain, everything)
    kinds = {name: outcome_kind(scenario, name) for name in names}
    cells = {(r.outcome, r.date, r.arm, r.measure): cell(r.median, r.low, r.high, kinds[r.outcome],
                                                          signed=r.measure == "difference")
             for r in plain.itertuples() if r.outcome in kinds}
    for outcome in names:
        for date in dict.fromkeys(plain["date"]):
            row = [cells.get((outcome, date, reference, "level"), "")]
            for label in policies:
                row += [cells.get((outcome, date, label, measure), "") for measure in ("level", "difference")]
            grid.add_row(f"{outcome_label(scenario, outcome)}\n[dim]{outcome}[/dim]", date, *row)
    console.print(grid, highlight=False)
    hidden = len(set(table["outcome"])) - len(names)
    if hidden > 0:
        console.print(f"{len(names)} headline outcomes shown; {hidden} more with --all, --json or the store",
                      highlight=False)


def _print_split(table: pd.DataFrame) -> None:
    grid = Table("outcome", "date", "parametric sd", "stochastic sd", "parametric share",
                 title="Where the spread comes from (parameter uncertainty vs chance)", title_justify="left")
    for row in scalar_rows(table, COMPARISON_COLUMNS).itertuples():
        grid.add_row(str(row.outcome), row.date, number(row.parametric_sd), number(row.stochastic_sd),
                     number(row.parametric_share, "share"))
    console.print(grid)


def _sensitivity(result: EnsembleResult, draws: dict, date: str) -> pd.DataFrame:
    """RBD-FAST indices of each one-number outcome at `date` (per-sample means), with intervals."""
    import numpy as np

    from aftermath.decisions.sensitivity import given_data_sensitivity

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
                     ", ".join(f"{r.parameter} {band(r.value, r.low, r.high)}" for r in top.itertuples())
                     or "none")
    console.print(grid)
